"""mini-3DIEBench: polycube objects rendered in numpy under random 3D rotations, background hues and lights.

Each class is a pentacube (5 unit cubes glued face to face) with no rotational self-symmetry, so every pose
of an object is distinguishable from its image. Instances stretch the shape per axis and jitter the colour
of each cube. A view is a point-sampled surface, rotated, projected orthographically with a z-buffer and
shaded by Lambert's law plus ambient light. The latent of a view follows 3DIEBench: extrinsic Tait-Bryan
angles (x, y, z) in [-pi/2, pi/2], background hue, light polar angle theta and azimuth phi.
"""

from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy.spatial.transform import Rotation

FACES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
# Grey-free, distinct base colours of the 5 cubes (shared by all classes: the class is the shape).
CUBE_COLOURS = np.array([[0.85, 0.25, 0.2], [0.25, 0.7, 0.3], [0.25, 0.35, 0.85], [0.9, 0.8, 0.2],
                         [0.75, 0.3, 0.8]])


def cube_rotations() -> np.ndarray:
    """The 24 proper rotations of the cube (signed permutation matrices with determinant +1)."""
    found = []
    for perm in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        for signs in product((1, -1), repeat=3):
            m = np.zeros((3, 3), int)
            m[range(3), perm] = signs
            if round(np.linalg.det(m)) == 1:
                found.append(m)
    return np.stack(found)


def normalise(cubes: np.ndarray) -> tuple:
    """A translation-free, order-free key of a set of voxels."""
    shifted = cubes - cubes.min(0)
    return tuple(sorted(map(tuple, shifted.tolist())))


def canonical(cubes: np.ndarray, rotations: np.ndarray) -> tuple:
    """The smallest key over the 24 rotations: equal for shapes that are rotations of one another."""
    return min(normalise(cubes @ r.T) for r in rotations)


def symmetry_order(cubes: np.ndarray, rotations: np.ndarray) -> int:
    """How many cube rotations map the shape onto itself (1: no rotational self-symmetry)."""
    key = normalise(cubes)
    return sum(normalise(cubes @ r.T) == key for r in rotations)


def pentacube_classes(count: int) -> list[np.ndarray]:
    """The first ``count`` pentacubes (in canonical order) without rotational self-symmetry."""
    rotations = cube_rotations()
    shapes = {canonical(np.zeros((1, 3), int), rotations)}
    for _ in range(4):
        grown = set()
        for shape in shapes:
            cubes = np.array(shape)
            for cube, face in product(cubes, FACES):
                new = cube + face
                if not (cubes == new).all(1).any():
                    grown.add(canonical(np.vstack([cubes, new]), rotations))
        shapes = grown
    chosen = [np.array(s) for s in sorted(shapes) if symmetry_order(np.array(s), rotations) == 1]
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} pentacubes have no rotational symmetry; asked for {count}")
    return chosen[:count]


def surface_points(cubes: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``count`` points spread evenly over the exposed faces (unit squares), with normals and cube index."""
    exposed = np.array([(i, f) for i, cube in enumerate(cubes) for f in range(6)
                        if not (cubes == cube + FACES[f]).all(1).any()])
    which = exposed[rng.integers(0, len(exposed), count)]
    cube_index, normal = which[:, 0], FACES[which[:, 1]].astype(float)
    # A point on the face: centre + normal / 2 + two in-plane offsets in [-1/2, 1/2].
    offsets = rng.uniform(-0.5, 0.5, (count, 3)) * (normal == 0)
    points = cubes[cube_index] + normal / 2 + offsets
    return points - cubes.mean(0), normal, cube_index


@dataclass
class Objects:
    points: np.ndarray      # (objects, points, 3), centred
    normals: np.ndarray     # (objects, points, 3), unit
    colours: np.ndarray     # (objects, points, 3) in [0, 1]
    labels: np.ndarray      # (objects,)


def make_objects(classes: list[np.ndarray], per_class: int, points: int, stretch: tuple[float, float],
                 jitter: float, rng: np.random.Generator) -> Objects:
    """Instances: each class's pentacube stretched by s ~ U[stretch]^3 per axis, each cube's colour jittered."""
    all_points, all_normals, all_colours, labels = [], [], [], []
    for label, cubes in enumerate(classes):
        for _ in range(per_class):
            p, n, cube = surface_points(cubes, points, rng)
            scale = rng.uniform(*stretch, 3)
            colour = np.clip(CUBE_COLOURS + rng.uniform(-jitter, jitter, CUBE_COLOURS.shape), 0, 1)
            # Normals of a stretched surface transform by the inverse scale, then renormalise.
            normal = n / scale
            all_points.append(p * scale)
            all_normals.append(normal / np.linalg.norm(normal, axis=1, keepdims=True))
            all_colours.append(colour[cube])
            labels.append(label)
    return Objects(np.stack(all_points), np.stack(all_normals), np.stack(all_colours), np.array(labels))


def draw_latents(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 6): angles x, y, z ~ U[-pi/2, pi/2], background hue ~ U[0, 1], light theta ~ U[0, pi/4],
    light phi ~ U[0, 2 pi]."""
    return np.column_stack([rng.uniform(-np.pi / 2, np.pi / 2, (count, 3)), rng.uniform(0, 1, count),
                            rng.uniform(0, np.pi / 4, count), rng.uniform(0, 2 * np.pi, count)])


def hue_to_rgb(hue: np.ndarray, saturation: float, value: float) -> np.ndarray:
    """HSV -> RGB for an array of hues (matplotlib's formula)."""
    from matplotlib.colors import hsv_to_rgb

    hsv = np.column_stack([hue, np.full_like(hue, saturation), np.full_like(hue, value)])
    return hsv_to_rgb(hsv)


def render(objects: Objects, object_index: np.ndarray, latents: np.ndarray, size: int, pixels_per_unit: float,
           ambient: float) -> np.ndarray:
    """Images (views, size, size, 3) in [0, 1]: one per (object, latent)."""
    views = len(object_index)
    rotation = Rotation.from_euler("xyz", latents[:, :3]).as_matrix()          # extrinsic x, then y, then z
    points = objects.points[object_index] @ rotation.transpose(0, 2, 1)
    normals = objects.normals[object_index] @ rotation.transpose(0, 2, 1)
    theta, phi = latents[:, 4], latents[:, 5]
    light = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    lambert = np.clip((normals @ light[:, :, None])[..., 0], 0, None)
    shaded = np.clip(objects.colours[object_index] * (ambient + lambert)[..., None], 0, 1)
    # Orthographic projection along z (the camera looks down -z); row = -y so that up is up.
    column = np.floor(points[..., 0] * pixels_per_unit + size / 2).astype(int)
    row = np.floor(-points[..., 1] * pixels_per_unit + size / 2).astype(int)
    inside = (column >= 0) & (column < size) & (row >= 0) & (row < size)
    images = np.repeat(hue_to_rgb(latents[:, 3], 0.5, 0.8)[:, None, :], size * size, axis=1)
    view = np.broadcast_to(np.arange(views)[:, None], inside.shape)
    flat = (view * size * size + row * size + column)[inside]
    depth, colour = points[..., 2][inside], shaded[inside]
    # z-buffer: sort by (pixel, nearest first: largest z); each pixel takes the first point of its run.
    # Depth quantised to 1e-4 units (objects span a few units) below the pixel index in one int64 key.
    nearness = np.round((depth.max(initial=0.0) - depth) * 1e4).astype(np.int64)
    order = np.argsort(flat.astype(np.int64) * (int(nearness.max(initial=0)) + 1) + nearness)
    pixels = flat[order]
    first = np.flatnonzero(np.r_[True, pixels[1:] != pixels[:-1]])
    images = images.reshape(-1, 3)
    images[pixels[first]] = colour[order][first]
    return images.reshape(views, size, size, 3).astype(np.float32)


def relative_quaternion(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The rotation from view 1 to view 2 as 3DIEBench's loader builds it, R1^-1 R2 (angles extrinsic 'xyz'),
    as a scalar-last quaternion (x, y, z, w) with the sign fixed to w >= 0 (q and -q are one rotation)."""
    relative = Rotation.from_euler("xyz", first).inv() * Rotation.from_euler("xyz", second)
    quaternion = relative.as_quat()
    return quaternion * np.where(quaternion[..., 3:] < 0, -1.0, 1.0)
