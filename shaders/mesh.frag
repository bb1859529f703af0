// mesh.frag: colour pass. Albedo = base colour x vertex colour x texture; lit in camera space by a
// Lambert key + fill + ambient rig with optional Blinn-Phong specular (or unlit for albedo/region
// renders). Texture alpha < 0.5 discards the fragment (cut-outs); u_opacity < 1 is blended by the
// caller (second pass, depth writes off). Two-sided: the normal is flipped toward the camera.
#version 330 core

in vec3 v_pos_cam;
in vec3 v_normal_cam;
in vec3 v_color;
in vec2 v_uv;
flat in int v_label;

uniform vec3 u_base_color;
uniform bool u_use_texture;
uniform sampler2D u_texture;
uniform float u_opacity;
uniform float u_specular;

uniform bool u_unlit;
uniform vec3 u_light_dir[2];     // camera space, unit, from the surface toward the light
uniform float u_light_intensity[2];
uniform float u_ambient;
uniform float u_shininess;

layout(location = 0) out vec4 o_color;

void main() {
    vec3 albedo = u_base_color * v_color;
    if (u_use_texture) {
        // Image rows were uploaded top row first, so OBJ-style v (up) is sampled at 1 - v.
        vec4 tex = texture(u_texture, vec2(v_uv.x, 1.0 - v_uv.y));
        if (tex.a < 0.5) discard;
        albedo *= tex.rgb;
    }
    vec3 rgb = albedo;
    if (!u_unlit) {
        vec3 view = normalize(-v_pos_cam);     // camera at the origin
        float len_n = length(v_normal_cam);
        // Degenerate geometry has no normal: treat it as facing the camera rather than producing NaN.
        vec3 n = len_n > 1e-20 ? v_normal_cam / len_n : view;
        if (dot(n, view) < 0.0) n = -n;        // light the side we see (open meshes, lenses)
        float diffuse = u_ambient;
        float spec = 0.0;
        for (int i = 0; i < 2; ++i) {
            vec3 l = u_light_dir[i];
            diffuse += u_light_intensity[i] * max(dot(n, l), 0.0);
            vec3 h = normalize(l + view);
            spec += u_light_intensity[i] * pow(max(dot(n, h), 0.0), u_shininess);
        }
        rgb = albedo * diffuse + u_specular * spec;
    }
    o_color = vec4(clamp(rgb, 0.0, 1.0), u_opacity);
}
