"""Pure triangle-mesh helpers (numpy / scipy): normals, areas, topology, subdivision, distances.

Used by the built-in head generator, the GL mesh renderer and the synthetic texture painter.

Conventions: vertices ``(V, 3)`` float64 arrays, faces ``(F, 3)`` int64 arrays with counter-clockwise
corners seen from outside (so ``cross(b - a, c - a)`` points outward). Nothing here keeps state.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

# ---------------------------------------------------------------------------------------------
# Normals, areas, volumes
# ---------------------------------------------------------------------------------------------


def face_normals(verts: np.ndarray, faces: np.ndarray, normalize: bool = True) -> np.ndarray:
    """(F, 3) face normals (unit, or area-weighted x2 when ``normalize`` is False)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    n = np.cross(b - a, c - a)
    if normalize:
        n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    return n


def face_areas(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) triangle areas."""
    return 0.5 * np.linalg.norm(face_normals(verts, faces, normalize=False), axis=1)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit vertex normals (float64), area-weighted mean of the incident face normals
    (0 for isolated vertices)."""
    fn = face_normals(verts, faces, normalize=False)
    V = verts.shape[0]
    vn = np.zeros((V, 3), dtype=np.float64)
    for corner in range(3):  # bincount is much faster than np.add.at for scatter-add
        for k in range(3):
            vn[:, k] += np.bincount(faces[:, corner], weights=fn[:, k], minlength=V)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-20)


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed triangle surface (positive when faces point outward)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def triangle_quality(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) shape quality 4*sqrt(3)*area / sum(edge^2): 1 for equilateral, 0 for degenerate."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    e2 = ((b - a) ** 2).sum(1) + ((c - b) ** 2).sum(1) + ((a - c) ** 2).sum(1)
    return 4.0 * np.sqrt(3.0) * face_areas(verts, faces) / np.maximum(e2, 1e-30)


# ---------------------------------------------------------------------------------------------
# Topology
# ---------------------------------------------------------------------------------------------


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) undirected edges, each sorted (i < j), in sorted order."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """(B, 2) directed edges used by exactly one face, in that face's orientation."""
    return boundary_edge_faces(faces)[0]


def boundary_edge_faces(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boundary edges (B, 2) (directed as in their face), the face (B,) each belongs to, and the
    corner slot (B,) in 0..2 of the edge's first vertex in that face."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    slot = np.repeat(np.arange(3), len(faces))
    _, inverse, counts = np.unique(np.sort(directed, axis=1), axis=0, return_inverse=True, return_counts=True)
    once = counts[inverse.ravel()] == 1
    return directed[once], owner[once], slot[once]


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Closed boundary loops, each an array of vertex ids following the faces' orientation.

    Raises ValueError if the boundary is not a set of simple loops (a non-manifold boundary vertex).
    """
    nxt: dict[int, int] = {}
    for a, b in boundary_edges(faces):
        if int(a) in nxt:
            raise ValueError(f"boundary vertex {a} has two outgoing boundary edges")
        nxt[int(a)] = int(b)
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        if v != start:
            raise ValueError("open boundary chain (mesh boundary is not a loop)")
        loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def nonmanifold_edge_count(faces: np.ndarray) -> int:
    """Number of undirected edges shared by more than two faces."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return int((counts > 2).sum())


def adjacency(num_verts: int, faces: np.ndarray, verts: np.ndarray | None = None) -> sp.csr_matrix:
    """Symmetric (V, V) vertex adjacency; entries are edge lengths if ``verts`` is given, else 1."""
    e = unique_edges(faces)
    w = np.ones(len(e)) if verts is None else np.linalg.norm(verts[e[:, 0]] - verts[e[:, 1]], axis=1)
    m = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(num_verts, num_verts))
    return (m + m.T).tocsr()


def uniform_laplacian(num_verts: int, faces: np.ndarray) -> sp.csr_matrix:
    """Graph Laplacian L = D - A (positive semi-definite), uniform weights."""
    a = adjacency(num_verts, faces)
    return (sp.diags(np.asarray(a.sum(axis=1)).ravel()) - a).tocsr()


def components(num_verts: int, faces: np.ndarray) -> np.ndarray:
    """(V,) connected-component label per vertex."""
    return connected_components(adjacency(num_verts, faces), directed=False)[1]


def orient_consistently(faces: np.ndarray) -> np.ndarray:
    """Flip faces so neighbours agree (each interior edge is used once in each direction).

    Orientation propagates by breadth-first search inside each connected piece; the first face of a
    piece keeps its orientation. Returns a new (F, 3) array.
    """
    faces = faces.copy()
    edge_faces: dict[tuple[int, int], list[int]] = defaultdict(list)
    for f, tri in enumerate(faces):
        for k in range(3):
            a, b = int(tri[k]), int(tri[(k + 1) % 3])
            edge_faces[(min(a, b), max(a, b))].append(f)
    done = np.zeros(len(faces), dtype=bool)
    for seed in range(len(faces)):
        if done[seed]:
            continue
        done[seed] = True
        queue = [seed]
        while queue:
            f = queue.pop()
            tri = faces[f]
            for k in range(3):
                a, b = int(tri[k]), int(tri[(k + 1) % 3])
                for g in edge_faces[(min(a, b), max(a, b))]:
                    if done[g]:
                        continue
                    other = faces[g]
                    # A consistent neighbour uses the shared edge as (b, a).
                    same_dir = any(int(other[m]) == a and int(other[(m + 1) % 3]) == b for m in range(3))
                    if same_dir:
                        faces[g] = other[::-1]
                    done[g] = True
                    queue.append(g)
    return faces


def triangles_from_edges(edges: np.ndarray) -> np.ndarray:
    """All 3-cliques of an undirected edge list, as sorted (i < j < k) triples, (T, 3)."""
    nbrs: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        nbrs[int(a)].add(int(b))
        nbrs[int(b)].add(int(a))
    tris = set()
    for a, b in edges:
        a, b = int(a), int(b)
        for c in nbrs[a] & nbrs[b]:
            tris.add(tuple(sorted((a, b, c))))
    return np.asarray(sorted(tris), dtype=np.int64)


def drop_spurious_cliques(tris: np.ndarray) -> np.ndarray:
    """Remove 3-cliques that are not faces of a surface built from an edge list.

    A vertex of degree 3 whose neighbours are mutually connected yields a fourth clique covering
    it; such a clique is recognised by all three of its edges lying in three cliques.
    """
    e = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [0, 2]]]), axis=1)
    _, inverse, counts = np.unique(e, axis=0, return_inverse=True, return_counts=True)
    per_tri = counts[inverse.ravel()].reshape(3, -1).T  # (T, 3)
    return tris[~(per_tri > 2).all(axis=1)]


# ---------------------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------------------


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere by ``level`` midpoint subdivisions of the icosahedron (10*4^l + 2 vertices)."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                  [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=np.float64)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                  [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                  [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], dtype=np.int64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(level):
        v, f, _ = subdivide_midpoint(v, f)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, f


def uv_sphere(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere with poles on +z (index 0) and -z (last index); ``rings`` latitude circles.

    Polar angles are symmetric about the equator, so the vertex centroid is exactly the origin.
    """
    theta = np.pi * np.arange(1, rings + 1) / (rings + 1)
    phi = 2.0 * np.pi * np.arange(segments) / segments
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring = np.stack([st * np.cos(phi), st * np.sin(phi), np.broadcast_to(ct, (rings, segments))], -1)
    verts = np.concatenate([[[0.0, 0.0, 1.0]], ring.reshape(-1, 3), [[0.0, 0.0, -1.0]]])
    faces = []
    idx = lambda r, s: 1 + r * segments + (s % segments)  # noqa: E731
    for s in range(segments):
        faces.append([0, idx(0, s), idx(0, s + 1)])
        for r in range(rings - 1):
            faces.append([idx(r, s), idx(r + 1, s), idx(r + 1, s + 1)])
            faces.append([idx(r, s), idx(r + 1, s + 1), idx(r, s + 1)])
        faces.append([len(verts) - 1, idx(rings - 1, s + 1), idx(rings - 1, s)])
    return verts, np.asarray(faces, dtype=np.int64)


def subdivide_midpoint(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-to-4 subdivision with new vertices at edge midpoints.

    Returns (verts, faces, edges): original vertices keep their ids; new vertex ``V + e`` sits on
    ``edges[e]`` (the sorted unique edges of the input).
    """
    V = len(verts)
    edges = unique_edges(faces)
    lookup = {(int(a), int(b)): V + i for i, (a, b) in enumerate(edges)}
    mid = lambda a, b: lookup[(min(a, b), max(a, b))]  # noqa: E731
    new_faces = []
    for a, b, c in faces.tolist():
        ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
        new_faces += [[a, ab, ca], [ab, b, bc], [ca, bc, c], [ab, bc, ca]]
    new_verts = np.concatenate([verts, 0.5 * (verts[edges[:, 0]] + verts[edges[:, 1]])])
    return new_verts, np.asarray(new_faces, dtype=np.int64), edges


def subdivide_butterfly(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolating 1-to-4 subdivision: originals stay, new vertices by the butterfly rule.

    Interior edges use the 8-point butterfly stencil (w = 1/16), boundary edges the 4-point curve
    scheme, and edges whose stencil is incomplete fall back to the midpoint. Returns like
    :func:`subdivide_midpoint`.
    """
    V = len(verts)
    new_verts, new_faces, edges = subdivide_midpoint(verts, faces)
    # Opposite vertex of each directed edge (a, b) -> c in face (a, b, c).
    opposite: dict[tuple[int, int], int] = {}
    for a, b, c in faces.tolist():
        opposite[(a, b)], opposite[(b, c)], opposite[(c, a)] = c, a, b
    bnext: dict[int, int] = {}
    bprev: dict[int, int] = {}
    for a, b in boundary_edges(faces).tolist():
        bnext[a], bprev[b] = b, a
    w = 1.0 / 16.0
    for i, (a, b) in enumerate(edges.tolist()):
        c, d = opposite.get((a, b)), opposite.get((b, a))
        if c is None or d is None:
            # Boundary edge: 4-point scheme along the boundary loop (directed a -> b or b -> a).
            s, t = (a, b) if bnext.get(a) == b else (b, a)
            p, n = bprev.get(s), bnext.get(t)
            if p is not None and n is not None:
                new_verts[V + i] = (9 * (verts[s] + verts[t]) - (verts[p] + verts[n])) / 16.0
            continue
        # Wing vertices: across the other two edges of each of the two faces (neighbours use them reversed).
        wings = [opposite.get((a, c)), opposite.get((c, b)), opposite.get((b, d)), opposite.get((d, a))]
        if any(x is None for x in wings):
            continue
        new_verts[V + i] = (0.5 * (verts[a] + verts[b]) + 2 * w * (verts[c] + verts[d])
                            - w * sum(verts[x] for x in wings))
    return new_verts, new_faces, edges


def bridge_loops(loop_a: np.ndarray, loop_b: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Triangulate the strip between two closed loops running the same way round (zipper).

    Starts at the closest pair and always adds the shorter of the two possible diagonals.
    Returns (len(a) + len(b), 3) faces; orient them afterwards with the neighbouring surface.
    """
    a, b = np.asarray(loop_a), np.asarray(loop_b)
    d = np.linalg.norm(verts[a][:, None] - verts[b][None], axis=2)
    ia, ib = np.unravel_index(np.argmin(d), d.shape)
    a, b = np.roll(a, -ia), np.roll(b, -ib)
    na, nb = len(a), len(b)
    i = j = 0
    tris = []
    while i < na or j < nb:
        a0, a1 = a[i % na], a[(i + 1) % na]
        b0, b1 = b[j % nb], b[(j + 1) % nb]
        step_a = j >= nb or (i < na and np.linalg.norm(verts[a1] - verts[b0]) <= np.linalg.norm(verts[a0] - verts[b1]))
        if step_a:
            tris.append([a0, a1, b0])
            i += 1
        else:
            tris.append([a0, b1, b0])
            j += 1
    return np.asarray(tris, dtype=np.int64)


def bridge_equal_loops(loop_a: np.ndarray, loop_b: np.ndarray) -> np.ndarray:
    """Quads (split in two) between two loops of equal length with index-aligned vertices."""
    n = len(loop_a)
    tris = []
    for k in range(n):
        a0, a1, b0, b1 = loop_a[k], loop_a[(k + 1) % n], loop_b[k], loop_b[(k + 1) % n]
        tris += [[a0, a1, b1], [a0, b1, b0]]
    return np.asarray(tris, dtype=np.int64)


def fan(loop: np.ndarray, center: int) -> np.ndarray:
    """Triangles closing a loop with one centre vertex."""
    n = len(loop)
    return np.asarray([[loop[k], loop[(k + 1) % n], center] for k in range(n)], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Fields on meshes
# ---------------------------------------------------------------------------------------------


def smooth_field(values: np.ndarray, faces: np.ndarray, iterations: int, lam: float = 0.5,
                 fixed: np.ndarray | None = None) -> np.ndarray:
    """Uniform Laplacian smoothing of a per-vertex field ``(V, ...)``; ``fixed`` (V,) bool stays put."""
    n = len(values)
    adj = adjacency(n, faces)
    deg = np.maximum(np.asarray(adj.sum(axis=1)).ravel(), 1.0)
    avg = sp.diags(1.0 / deg) @ adj
    out = values.astype(np.float64).copy()
    flat = out.reshape(n, -1)
    for _ in range(iterations):
        upd = flat + lam * (avg @ flat - flat)
        if fixed is not None:
            upd[fixed] = flat[fixed]
        flat = upd
    return flat.reshape(values.shape)


def harmonic_interpolate(num_verts: int, faces: np.ndarray, fixed_idx: np.ndarray,
                         fixed_values: np.ndarray) -> np.ndarray:
    """Solve L x = 0 on free vertices with x = values on ``fixed_idx`` (uniform Laplacian).

    Gives smooth weights between constrained regions (used for skinning weights). Vertices not
    used by ``faces`` stay 0. fixed_values: (K,) or (K, C). Returns (V,) or (V, C).
    """
    L = uniform_laplacian(num_verts, faces).tocsr()
    fixed = np.zeros(num_verts, dtype=bool)
    fixed[fixed_idx] = True
    free = np.flatnonzero(~fixed & (L.diagonal() > 0))
    vals = np.asarray(fixed_values, dtype=np.float64)
    x = np.zeros((num_verts,) + vals.shape[1:])
    x[fixed_idx] = vals
    if len(free):
        from scipy.sparse.linalg import spsolve

        A = L[free][:, free].tocsc()
        rhs = -(L[free][:, np.flatnonzero(fixed)] @ x[fixed])
        x[free] = spsolve(A, rhs).reshape((len(free),) + vals.shape[1:])
    return x


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def ray_mesh_intersect(origins: np.ndarray, dirs: np.ndarray, verts: np.ndarray,
                       faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit (t > 0) of each ray with the mesh (Moller-Trumbore, brute force).

    origins, dirs: (R, 3). Returns face index (R,) (-1 for no hit), t (R,), barycentrics (R, 3).
    """
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    e1, e2 = b - a, c - a
    out_f = np.full(len(origins), -1, dtype=np.int64)
    out_t = np.full(len(origins), np.inf)
    out_b = np.zeros((len(origins), 3))
    for r, (o, d) in enumerate(zip(origins, dirs)):
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        ok = np.abs(det) > 1e-18
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - a
        u = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, e1)
        v = (q @ d) * inv
        t = np.einsum("ij,ij->i", e2, q) * inv
        hit = ok & (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9) & (t > 1e-9)
        if hit.any():
            k = np.flatnonzero(hit)[np.argmin(t[hit])]
            out_f[r], out_t[r] = k, t[k]
            out_b[r] = [1.0 - u[k] - v[k], u[k], v[k]]
    return out_f, out_t, out_b
