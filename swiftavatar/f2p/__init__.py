"""F2P (Shi et al. 2019) as a baseline: the face parser whose features give the
facial-content loss (parser, parser_train) and the per-photo optimisation of an avatar
vector through the imitator (optimize). Pure torch; the imitator is swiftavatar.imitator."""
from swiftavatar.f2p.optimize import F2PConfig, content_loss, f2p
from swiftavatar.f2p.parser import FaceParser, FaceParserConfig

__all__ = ["F2PConfig", "FaceParser", "FaceParserConfig", "content_loss", "f2p"]
