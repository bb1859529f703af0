// mesh.vert: world-space triangle soup -> OpenCV camera space -> clip space.
// Shared by the colour pass (mesh.frag) and the geometry pass (gbuffer.frag).
// u_proj maps OpenCV camera space (x right, y down, z forward) so that framebuffer row 0 is the
// image's top row (v = 0): glReadPixels then returns rows in image order with no flip.
#version 330 core

layout(location = 0) in vec3 a_position;   // world space
layout(location = 1) in vec3 a_normal;     // world space (not necessarily unit)
layout(location = 2) in vec3 a_color;      // per-vertex RGB in [0, 1]
layout(location = 3) in vec2 a_uv;         // OBJ convention: (0, 0) = bottom-left of the texture image
layout(location = 4) in int a_label;       // per-triangle label, same on all three corners

uniform mat4 u_world_to_cam;  // rigid OpenCV world -> camera
uniform mat3 u_normal_matrix; // inverse-transpose of its 3x3 block
uniform mat4 u_proj;          // camera -> clip (see perse/render/gl/mesh_renderer.py: projection_matrix)

out vec3 v_pos_cam;
out vec3 v_normal_cam;
out vec3 v_color;
out vec2 v_uv;
flat out int v_label;

void main() {
    vec4 p_cam = u_world_to_cam * vec4(a_position, 1.0);
    v_pos_cam = p_cam.xyz;
    v_normal_cam = u_normal_matrix * a_normal;
    v_color = a_color;
    v_uv = a_uv;
    v_label = a_label;
    gl_Position = u_proj * p_cam;
}
