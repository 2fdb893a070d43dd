// runner/version.h: version string and compiled-in features.
#pragma once
#include <stdio.h>

const char *story_version(void);
const char *story_git_commit(void);
void story_print_version(FILE *f);
