// jobs/render_out.c: what the render job leaves on disk: frames (PNG with how each was made
// in text chunks), comic pages, index.html and manifest.json (see jobs/render.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/render.h"
#include "runner/check.h"
#include "runner/comic.h"
#include "runner/html.h"
#include "runner/image.h"
#include "runner/version.h"

static const char *csa_mode_name(CsaMode m) {
    return m == CSA_MODE_BANK ? "bank" : m == CSA_MODE_WINDOW ? "window" : "off";
}

const char *render_frame_rel(const Render *r, int f, char *buf, size_t n) {
    snprintf(buf, n, r->cfg.n_frames > 1000 ? "frames/frame_%05d.png" : "frames/frame_%03d.png",
             f);
    return buf;
}

int render_write_frame(const Render *r, int f, const Tensor *image, char *err, size_t errlen) {
    const RenderConfig *c = &r->cfg;
    Image img = {0};
    if (image_from_tensor(image, 0, &img, err, errlen)) return -1;
    char rel[64], path[4096], seed[32], idx[16], steps[16], guid[32], size[32];
    render_frame_rel(r, f, rel, sizeof rel);
    snprintf(path, sizeof path, "%s/%s", c->output, rel);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)(c->seed + (uint64_t)f));
    snprintf(idx, sizeof idx, "%d", f);
    snprintf(steps, sizeof steps, "%d", c->steps);
    snprintf(guid, sizeof guid, "%g", (double)c->guidance);
    snprintf(size, sizeof size, "%dx%d", c->width, c->height);
    ImageText t[] = {{"prompt", r->prompts[f]},
                     {"negative_prompt", r->negative},
                     {"seed", seed},
                     {"frame", idx},
                     {"caption", c->frames[f].caption ? c->frames[f].caption : ""},
                     {"model", c->model},
                     {"sampler", pipeline_sampler_name(r->sampler)},
                     {"steps", steps},
                     {"guidance", guid},
                     {"size", size},
                     {"csa_mode", csa_mode_name(c->csa.mode)},
                     {"config_hash", c->hash},
                     {"software", "storyrun"}};
    int rc = image_write_png(path, &img, t, (int)(sizeof t / sizeof *t), err, errlen);
    image_free(&img);
    return rc;
}

int render_record_frames(Render *r, const int *newly_done, char *err, size_t errlen) {
    const RenderConfig *c = &r->cfg;
    for (int f = 0; f < c->n_frames; f++) {
        if (!newly_done[f]) continue;
        char rel[64], seed[32], idx[16];
        render_frame_rel(r, f, rel, sizeof rel);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)(c->seed + (uint64_t)f));
        snprintf(idx, sizeof idx, "%d", f);
        const char *info[] = {"frame", idx, "seed", seed, "prompt", r->prompts[f],
                              "caption", c->frames[f].caption ? c->frames[f].caption : ""};
        if (!manifest_add_file(&r->man, rel, "frame", info, 4, err, errlen)) return -1;
        r->done[f] = 1;
    }
    return manifest_write(&r->man, err, errlen);
}

int render_resume_state(Render *r, char *err, size_t errlen) {
    const RenderConfig *c = &r->cfg;
    memset(r->done, 0, (size_t)c->n_frames * sizeof *r->done);
    int rc = manifest_load(&r->man, c->output, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1 && strcmp(r->man.config_hash, c->hash)) {
        if (!r->restart)
            return snprintf(err, errlen,
                            "%s holds the outputs of another config (config hash %.12s, this "
                            "config %.12s, from %s): re-run with --restart to replace them, or "
                            "choose another output folder (--output DIR)",
                            c->output, r->man.config_hash, c->hash,
                            r->man.config_path && *r->man.config_path ? r->man.config_path : "?"),
                   -1;
        manifest_free(&r->man);
        rc = 0;
    }
    if (rc == 0) {
        manifest_free(&r->man);
        manifest_init(&r->man, c->output, c->path, c->hash);
        return 0;
    }
    for (int f = 0; f < c->n_frames; f++) {
        char rel[64], e2[512];
        const ManifestEntry *e = manifest_find(&r->man, render_frame_rel(r, f, rel, sizeof rel));
        r->done[f] = e && !manifest_entry_verify(&r->man, e, e2, sizeof e2);
    }
    return 0;
}

static int mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

int render_finish_outputs(Render *r, char *err, size_t errlen) {
    const RenderConfig *c = &r->cfg;
    const int F = c->n_frames;
    Image *imgs = calloc((size_t)F, sizeof *imgs);
    ComicPanel *panels = calloc((size_t)F, sizeof *panels);
    HtmlFrame *hf = calloc((size_t)F, sizeof *hf);
    char (*rels)[64] = calloc((size_t)F, sizeof *rels);
    Image *pages = NULL;
    int n_pages = 0, rc = -1, n_panels = 0;
    char **page_rel = NULL;
    for (int f = 0; f < F; f++) {
        render_frame_rel(r, f, rels[f], sizeof rels[f]);
        hf[f].image = r->done[f] ? rels[f] : NULL;
        hf[f].caption = c->frames[f].caption;
        hf[f].prompt = r->prompts[f];
        hf[f].seed = c->seed + (uint64_t)f;
    }
    if (c->comic_layout != COMIC_NONE) {
        for (int f = 0; f < F; f++) {
            if (!r->done[f]) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", c->output, rels[f]);
            if (image_read_png(path, &imgs[n_panels], err, errlen)) goto done;
            panels[n_panels].image = &imgs[n_panels];
            panels[n_panels].caption = c->frames[f].caption;
            panels[n_panels].name = rels[f];
            n_panels++;
        }
        if (comic_pages_width(panels, n_panels, c->comic_layout, c->font, c->font_size,
                              c->page_width, &pages, &n_pages, err, errlen))
            goto done;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/pages", c->output);
        if (n_pages && mkdir_p(dir)) {
            snprintf(err, errlen, "%s: cannot create the folder: %s", dir, strerror(errno));
            goto done;
        }
        page_rel = calloc((size_t)n_pages + 1, sizeof *page_rel);
        for (int i = 0; i < n_pages; i++) {
            char rel[64], path[4096];
            snprintf(rel, sizeof rel, "pages/page_%02d.png", i + 1);
            snprintf(path, sizeof path, "%s/%s", c->output, rel);
            ImageText t[] = {{"config_hash", c->hash}, {"software", "storyrun"}};
            if (image_write_png(path, &pages[i], t, 2, err, errlen)) goto done;
            page_rel[i] = strdup(rel);
            if (!manifest_add_file(&r->man, rel, "page", NULL, 0, err, errlen)) goto done;
        }
    }
    {
        char title[256], idx_path[4096], rates[96], gate[64], win[32];
        const char *base = strrchr(c->path, '/');
        snprintf(title, sizeof title, "%s", base ? base + 1 : c->path);
        snprintf(rates, sizeof rates, "sa32 %g, sa64 %g, other %g", (double)c->csa.sa32,
                 (double)c->csa.sa64, (double)c->csa.sa_other);
        snprintf(gate, sizeof gate, "%g below step %d, %g after", (double)c->csa.gate_early,
                 c->csa.gate_switch, (double)c->csa.gate_late);
        snprintf(win, sizeof win, "W %d, rate %g", c->csa.window, (double)c->csa.window_rate);
        HtmlSetting extra[] = {{"CSA sampling", rates}, {"CSA gate", gate}, {"CSA window", win}};
        HtmlStory hs = {.title = title,
                        .frames = hf,
                        .n_frames = F,
                        .pages = (const char *const *)page_rel,
                        .n_pages = n_pages,
                        .model = c->model,
                        .sampler = pipeline_sampler_name(r->sampler),
                        .csa_mode = csa_mode_name(c->csa.mode),
                        .style = c->style.name,
                        .negative = r->negative,
                        .precision = c->precision,
                        .config_path = c->path,
                        .config_hash = c->hash,
                        .seed = c->seed,
                        .steps = c->steps,
                        .width = c->width,
                        .height = c->height,
                        .guidance = c->guidance,
                        .extra = extra,
                        .n_extra = 3};
        snprintf(idx_path, sizeof idx_path, "%s/index.html", c->output);
        if (html_write_index(idx_path, &hs, err, errlen)) goto done;
        if (!manifest_add_file(&r->man, "index.html", "index", NULL, 0, err, errlen)) goto done;
    }
    rc = manifest_write(&r->man, err, errlen);
done:
    for (int i = 0; i < n_panels; i++) image_free(&imgs[i]);
    if (page_rel)
        for (int i = 0; i < n_pages; i++) free(page_rel[i]);
    free(page_rel);
    comic_pages_free(pages, n_pages);
    free(imgs), free(panels), free(hf), free(rels);
    return rc;
}
