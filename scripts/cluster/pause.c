/*
 * The pod sandbox process of the local cluster (the "pause" container): it holds the pod's
 * namespaces, reaps orphaned children (it is PID 1 of the pod when PID namespaces are shared)
 * and exits 0 on SIGTERM or SIGINT. Built static so the image needs no libc.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction stop, child;
    memset(&stop, 0, sizeof stop);
    memset(&child, 0, sizeof child);
    stop.sa_handler = on_stop;
    child.sa_handler = on_child;
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGINT, &stop, NULL) != 0 || sigaction(SIGTERM, &stop, NULL) != 0 ||
        sigaction(SIGCHLD, &child, NULL) != 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
