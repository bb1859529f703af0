"""Gaussian head avatars: binding to head triangles, attribute latent space, `.perse` files."""

from perse.avatar.binding import LocalGaussians, TriangleFrames, bind_to_world, triangle_frames
from perse.avatar.field import AttributeField, FieldConfig
from perse.avatar.io import load_avatar, read_avatar_meta, save_avatar
from perse.avatar.latent import LatentSpace, Look, lerp_looks
from perse.categories import Category
from perse.avatar.model import Avatar, AvatarState

__all__ = ["Avatar", "AvatarState", "AttributeField", "Category", "FieldConfig", "LatentSpace",
           "LocalGaussians", "Look", "TriangleFrames", "bind_to_world", "lerp_looks", "load_avatar",
           "read_avatar_meta", "save_avatar", "triangle_frames"]
