/* Prints the caller's user and group ids (real, effective, saved), its groups and capability
 * sets: tests/oci/test_users.py installs it set-uid and set-gid root in a busybox rootfs (whose
 * busybox drops set-id privileges itself) and compares what skiff-oci and runc start. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg, groups[64];
    int n = getgroups(64, groups);
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    printf("uid=%u,%u,%u gid=%u,%u,%u groups=", ru, eu, su, rg, eg, sg);
    for (int i = 0; i < n; i++) printf("%s%u", i ? "," : "", groups[i]);
    printf("\n");
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    while (status && fgets(line, sizeof line, status))
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10)) fputs(line, stdout);
    return 0;
}
