/* UDP echo for benchmarks/media.py: every datagram goes back to where it came from, read and
   sent in batches (recvmmsg, sendmmsg), so that the echo takes little of the CPU the measured
   process needs (the Python echo takes about as much as the process itself at 1,000 calls).

   The echo never sleeps on its socket: it reads what is there without waiting and, when
   nothing is, sleeps POLL_NS and reads again. A process asleep on a socket is woken by the
   sender's own system call (on loopback the kernel delivers the datagram inside the
   sender's sendto), and that wake-up cost the measured process about a sixth of its CPU per
   packet sent; the far ends of real calls are on other machines and cost a sender nothing
   of the kind. Datagrams come back within POLL_NS plus the batch's sending. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 256
#define SIZE 2048
#define POLL_NS 200000

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int buffer = 1 << 22;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { perror("bind"); return 1; }
    socklen_t length = sizeof local;
    getsockname(fd, (struct sockaddr *)&local, &length);
    printf("%d\n", ntohs(local.sin_port));
    fflush(stdout);
    static char data[BATCH][SIZE];
    static struct sockaddr_in from[BATCH];
    static struct iovec iov[BATCH];
    static struct mmsghdr messages[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = data[i];
            iov[i].iov_len = SIZE;
            memset(&messages[i].msg_hdr, 0, sizeof messages[i].msg_hdr);
            messages[i].msg_hdr.msg_iov = &iov[i];
            messages[i].msg_hdr.msg_iovlen = 1;
            messages[i].msg_hdr.msg_name = &from[i];
            messages[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, messages, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            struct timespec pause = {0, POLL_NS};
            nanosleep(&pause, NULL);
            continue;
        }
        for (int i = 0; i < n; i++) iov[i].iov_len = messages[i].msg_len;
        for (int sent = 0; sent < n;) {
            int m = sendmmsg(fd, messages + sent, n - sent, 0);
            if (m <= 0) break;
            sent += m;
        }
    }
}
