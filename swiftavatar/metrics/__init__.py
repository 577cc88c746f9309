"""Image metrics: LPIPS v0.1 built offline, with a record of which trunk weights it uses."""
from swiftavatar.metrics.lpips_offline import (
    BACKBONE_KINDS, LpipsMetric, TORCHVISION_FILES, build_lpips, check_image_range,
    find_backbone)

__all__ = ["BACKBONE_KINDS", "LpipsMetric", "TORCHVISION_FILES", "build_lpips",
           "check_image_range", "find_backbone"]
