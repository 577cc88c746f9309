"""The imitator (F2P, Shi et al. 2019): a generator from an avatar vector to the engine's
image, trained on the render stage's Parquet, so that gradients reach the vector. Model and
losses are pure torch.nn; training runs on Ray Train (actors.train_imitator)."""
from swiftavatar.imitator.losses import imitator_loss, pixel_l1
from swiftavatar.imitator.model import (Imitator, ImitatorConfig, RelaxedVector,
                                        annealed_temperature, decode_relaxed,
                                        imitator_from_args, onehot_inputs, relaxed_inputs)

__all__ = ["Imitator", "ImitatorConfig", "RelaxedVector", "annealed_temperature",
           "decode_relaxed", "imitator_from_args", "imitator_loss", "onehot_inputs",
           "pixel_l1", "relaxed_inputs"]
