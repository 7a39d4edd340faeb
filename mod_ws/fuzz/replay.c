/* Replays fuzz inputs without libFuzzer, so the corpus runs as a normal
 * test under gcc (and under ASan/UBSan in the sanitizer build).
 *
 * Usage: replay_<target> FILE|DIR...  Every file named, and every regular
 * file directly inside a directory named, is passed to
 * LLVMFuzzerTestOneInput once.  Exits 1 when no input was found.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    /* Exactly n bytes, so ASan catches a read past the input's end. */
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 1;
}

static int replay_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int count = 0;

    if (stat(path, &st) != 0) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path);
    }
    if ((d = opendir(path)) == NULL) {
        perror(path);
        exit(2);
    }
    while ((e = readdir(d)) != NULL) {
        char *full;
        struct stat fst;
        if (e->d_name[0] == '.') {
            continue;
        }
        full = malloc(strlen(path) + strlen(e->d_name) + 2);
        sprintf(full, "%s/%s", path, e->d_name);
        if (stat(full, &fst) == 0 && S_ISREG(fst.st_mode)) {
            count += replay_file(full);
        }
        free(full);
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    int i, count = 0;

    for (i = 1; i < argc; i++) {
        count += replay_path(argv[i]);
    }
    printf("%s: replayed %d inputs\n", argv[0], count);
    return count > 0 ? 0 : 1;
}
