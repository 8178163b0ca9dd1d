"""enf2enf: geometry-aware inference of steady-state PDEs with equivariant neural fields (Catalani et al., 2025).

Geometry (a signed distance field) is encoded into a latent point cloud by a meta-learned equivariant neural
field; a second equivariant field reads those latents plus global conditions and decodes the solution field.
"""
