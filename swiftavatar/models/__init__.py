"""SemanticStyleGAN in pure PyTorch: generator, discriminator, GAN losses, checkpoint converter."""
from swiftavatar.models.convert import (
    OfficialCheckpointError, config_from_official, convert_official_discriminator,
    convert_official_state_dict, load_official_checkpoint)
from swiftavatar.models.discriminator import Discriminator, DiscriminatorConfig
from swiftavatar.models.generator import GeneratorConfig, GeneratorOutput, SemanticGenerator
from swiftavatar.models.losses import (
    color_matching_loss, d_logistic_loss, g_nonsaturating_loss, path_length_penalty, r1_penalty)

__all__ = [
    "Discriminator", "DiscriminatorConfig", "GeneratorConfig", "GeneratorOutput",
    "OfficialCheckpointError", "SemanticGenerator", "color_matching_loss",
    "config_from_official", "convert_official_discriminator", "convert_official_state_dict",
    "d_logistic_loss", "g_nonsaturating_loss", "load_official_checkpoint",
    "path_length_penalty", "r1_penalty",
]
