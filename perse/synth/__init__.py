"""Synthetic attribute datasets: the attribute catalogue, procedural head textures, accessory geometry
bound to the head, the dataset generator and its reader.

    from perse.synth import generate_dataset, AttributeDataset, CATEGORIES
"""

from perse.synth.accessories import Accessory, build_accessories
from perse.synth.anatomy import head_anatomy
from perse.synth.binding import Binding, apply_binding, bind_to_mesh
from perse.synth.dataset import AttributeDataset, Frame
from perse.synth.generator import FORMAT_NAME, FORMAT_VERSION, generate_dataset
from perse.synth.paint_procedural import TexturePainter, paint_texture
from perse.synth.sampling import SynthSettings
from perse.synth.variants import CATEGORIES, Category, category_by_name, reference_look

__all__ = [
    "Accessory", "AttributeDataset", "Binding", "CATEGORIES", "Category", "FORMAT_NAME", "FORMAT_VERSION",
    "Frame", "SynthSettings", "TexturePainter", "apply_binding", "bind_to_mesh", "build_accessories",
    "category_by_name", "generate_dataset", "head_anatomy", "paint_texture", "reference_look",
]
