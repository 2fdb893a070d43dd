// runner/main.c: the storyrun command line. Each job lives in jobs/<name>.c; this file
// only parses the verb and hands over.
#include <stdio.h>
#include <string.h>

#include "jobs/jobs.h"
#include "runner/version.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun <command> [options]\n"
            "\n"
            "commands:\n"
            "  selfcheck        run every tensor op on a small problem against the CPU\n"
            "                   reference (and on the GPU when there is one); exit != 0 on a mismatch\n"
            "  devices          list CUDA devices, or say why storyrun runs on the CPU\n"
            "  inspect PATH     a model's family, components, dtypes, parameters and problems\n"
            "  tokenize --model PATH PROMPT\n"
            "                   the token ids of each of the model's tokenizers, and the cut\n"
            "  render CONFIG    a story (YAML) -> consistent frames, comic pages, index.html;\n"
            "                   run under mpirun/srun for N ranks (configs/demo.yaml)\n"
            "  check CONFIG     validate a story config and print the plan, without running\n"
            "  txt2img --model PATH --prompt TEXT [--seed N --steps N --size WxH ...]\n"
            "                   one image as diffusers would make it, written as a PNG\n"
            "                   (--model builtin:tiny-sd15 needs no download; --help for all)\n"
            "  embed CONFIG [--set key=value ...]\n"
            "                   video dataset -> CLIP image embeddings of sampled clips in an HDF5\n"
            "                   store, on 1 or N MPI ranks; resumes an existing store\n"
            "  predict CONFIG [--set key=value ...]\n"
            "                   frame pairs of a rendered story (or a TSV of image pairs) -> the\n"
            "                   motion predictor's transition embeddings in an HDF5 store\n"
            "  train CONFIG [--set key=value ...] [--resume]\n"
            "                   embeddings store -> trained motion predictor (checkpoint, log.csv,\n"
            "                   loss.png), data-parallel on 1 or N MPI ranks\n"
            "  animate CONFIG [--set key=value ...]\n"
            "                   transition videos between consecutive story frames from a\n"
            "                   transitions store, and the whole story as one MP4 (N ranks)\n"
            "  store info|verify STORE\n"
            "                   an HDF5 store's size, clips, attributes and datasets; or check its\n"
            "                   shapes, values and done flags (exit != 0 on problems)\n"
            "  eval-video INPUT... --encoder PATH [--lpips PATH] [--json PATH]\n"
            "                   CLIPSIM-first/frames and LPIPS-first/frames of videos or PNG\n"
            "                   frame folders, per input and their mean (docs/eval.md)\n"
            "  --version        version, git commit and the features compiled in\n"
            "  --help           this text\n"
            "\n"
            "The story jobs (render, embed, train, predict, animate, check), each driven by a\n"
            "YAML config and run the same on 1 process, on N MPI ranks and under Slurm, are\n"
            "being built on these; docs/ says what exists today.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        story_print_version(stdout);
        return 0;
    }
    if (!strcmp(cmd, "devices")) return job_devices(argc - 1, argv + 1);
    if (!strcmp(cmd, "selfcheck")) return job_selfcheck(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return job_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return job_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "txt2img")) return job_txt2img(argc - 1, argv + 1);
    if (!strcmp(cmd, "render")) return job_render(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return job_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "store")) return job_store(argc - 1, argv + 1);
    if (!strcmp(cmd, "embed")) return job_embed(argc - 1, argv + 1);
    if (!strcmp(cmd, "animate")) return job_animate(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval-video")) return job_eval_video(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return job_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return job_predict(argc - 1, argv + 1);
    fprintf(stderr, "storyrun: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
