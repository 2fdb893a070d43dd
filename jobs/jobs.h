// jobs/jobs.h: one entry point per job; argv[0] is the job's name.
#pragma once

int job_devices(int argc, char **argv);
int job_selfcheck(int argc, char **argv);
int job_inspect(int argc, char **argv);   // jobs/inspect.c: what a model holds
int job_tokenize(int argc, char **argv);  // jobs/tokenize.c: a prompt's token ids
int job_txt2img(int argc, char **argv);   // jobs/txt2img.c: one prompt -> one PNG
int job_store(int argc, char **argv);     // jobs/store.c: store info / store verify
int job_embed(int argc, char **argv);     // jobs/embed.c: videos -> CLIP embeddings store
int job_train(int argc, char **argv);     // jobs/train.c: embeddings store -> motion predictor
int job_render(int argc, char **argv);  // jobs/render.c: a story -> frames, comic, index.html
int job_check(int argc, char **argv);   // jobs/render.c: validate a config, print the plan
int job_predict(int argc, char **argv);  // jobs/predict.c: frame pairs -> transitions store
int job_eval_video(int argc, char **argv);  // jobs/eval_video.c: CLIPSIM / LPIPS of videos
int job_animate(int argc, char **argv);  // jobs/animate.c: transitions store -> videos
