"""The built-in realistic face domain (procedural photo-like faces with 13-class masks) and the
reader for real aligned-face folders.

Training code uses `face_images` / `FaceBatch.images` and `.masks`, or a `FaceFolder`.
Attribute records (`FaceBatch.attributes`, `face_attributes`, attributes.jsonl) are ground
truth for evaluation only: no training code may read them.
"""
from swiftavatar.faces.attributes import FaceAttributes, load_attributes, save_attributes
from swiftavatar.faces.config import FaceDomainConfig
from swiftavatar.faces.folder import (FaceFolder, FaceFolderError, write_face_batch,
                                      write_face_folder)
from swiftavatar.faces.procedural import (FaceBatch, contact_sheet, face_attributes, face_images,
                                          render_faces)

__all__ = [
    "FaceAttributes", "FaceBatch", "FaceDomainConfig", "FaceFolder", "FaceFolderError",
    "contact_sheet", "face_attributes", "face_images", "load_attributes", "render_faces",
    "save_attributes", "write_face_batch", "write_face_folder",
]
