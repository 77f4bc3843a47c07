"""Target transforms: turn an instance label image into the targets the lecture's networks regress.

- ``weights``   class weights and the U-Net weight map (slide 13)
- ``contour``   DCAN contour target (slide 19)
- ``distance``  DeepDistance inner / normalised outer distance maps (slide 20)
- ``fourier``   FourierNet distance-to-center function and Fourier descriptors (slides 21-22)

Inputs are NumPy integer label images (0 = background, 1..K = instances), 2D, and 3D for the
weight, contour and distance maps. Outputs are float arrays of the same shape.
"""
from .contour import contour_map
from .distance import inner_distance_map, outer_distance_map
from .fourier import (arc_lengths, distance_to_center, fourier_coefficients, fourier_descriptors,
                      fourier_series)
from .weights import border_distances, class_weight_map, unet_weight_map

__all__ = [
    "class_weight_map", "unet_weight_map", "border_distances",
    "contour_map",
    "inner_distance_map", "outer_distance_map",
    "distance_to_center", "arc_lengths", "fourier_coefficients", "fourier_series", "fourier_descriptors",
]
