"""comp448: dense prediction networks for medical image analysis.

A small reference library for the COMP 448/548 lecture "Dense prediction networks"
(Ç. Gündüz Demir). Every network, loss, target transform, metric and augmentation on
the slides has one readable implementation here; the lecture notebooks import it and
the nbgrader tests compare students' code with it.

Submodules (import them explicitly, e.g. ``from comp448 import losses``):

- ``comp448.losses``   BCE, focal, Dice, Tversky, generalised Dice, AttentionBoost, combinations
- ``comp448.targets``  class weights, U-Net weight map, DCAN contours, DeepDistance maps, Fourier descriptors
- ``comp448.metrics``  Dice, IoU, precision, recall, Hausdorff, GlaS object-level metrics
- ``comp448.nets``     the sixteen networks of the lecture
- ``comp448.augment``  joint image/label augmentation in 2D and 3D
- ``comp448.data``     synthetic and bundled images with instance labels, PyTorch datasets
- ``comp448.train``    the training engine (``python -m comp448.train PRESET --out DIR``)
- ``comp448.grading``  helpers that nbgrader test cells call
"""

__version__ = "0.1.0"
