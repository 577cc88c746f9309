"""F2P (Shi et al. 2019) and F2P v2 (Shi et al. 2020) as baselines: the face parser whose
features give the facial-content loss (parser, parser_train), the identity embedding whose
cosine distance gives the identity loss (identity, identity_train), the per-photo
optimisation of an avatar vector through the imitator (optimize) and F2P v2's translator from
the identity embedding to the vector (translator) with its training run on procedural faces
(translator_train). Pure torch; the imitator is swiftavatar.imitator."""
from swiftavatar.f2p.identity import IdentityNet, IdentityNetConfig
from swiftavatar.f2p.optimize import F2PConfig, content_loss, f2p
from swiftavatar.f2p.parser import FaceParser, FaceParserConfig

__all__ = ["F2PConfig", "FaceParser", "FaceParserConfig", "IdentityNet", "IdentityNetConfig",
           "content_loss", "f2p"]
