// gbuffer.frag: geometry pass (single-sampled, opaque meshes only): camera-space z in metres,
// camera-space unit normal facing the camera (OpenCV axes), and the triangle's integer label.
// Applies the same texture-alpha cut-out as mesh.frag so masks match the colour image.
#version 330 core

in vec3 v_pos_cam;
in vec3 v_normal_cam;
in vec3 v_color;
in vec2 v_uv;
flat in int v_label;

uniform bool u_use_texture;
uniform sampler2D u_texture;

layout(location = 0) out float o_depth;
layout(location = 1) out vec4 o_normal;
layout(location = 2) out int o_label;

void main() {
    if (u_use_texture && texture(u_texture, vec2(v_uv.x, 1.0 - v_uv.y)).a < 0.5) discard;
    float len_n = length(v_normal_cam);
    // Degenerate geometry has no normal: treat it as facing the camera rather than producing NaN.
    vec3 n = len_n > 1e-20 ? v_normal_cam / len_n : normalize(-v_pos_cam);
    if (dot(n, -v_pos_cam) < 0.0) n = -n;
    o_depth = v_pos_cam.z;
    o_normal = vec4(n, 0.0);
    o_label = v_label;
}
