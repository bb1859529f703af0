"""Gaussian head avatars: binding to head triangles, attribute latent space, `.perse` files."""

from perse.avatar.binding import LocalGaussians, bind_to_world
from perse.avatar.field import AttributeField, FieldConfig
from perse.avatar.io import load_avatar, read_avatar_meta, save_avatar
from perse.avatar.latent import LatentSpace, Look, lerp_looks
from perse.categories import Category
from perse.avatar.model import Avatar, AvatarState

__all__ = ["Avatar", "AvatarState", "AttributeField", "Category", "FieldConfig", "LatentSpace",
           "LocalGaussians", "Look", "bind_to_world", "lerp_looks", "load_avatar", "read_avatar_meta",
           "save_avatar"]
