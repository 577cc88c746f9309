"""SwiftAvatar: auto-creation of parameterised stylized avatars on arbitrary engines."""
__version__ = "0.1.0"
