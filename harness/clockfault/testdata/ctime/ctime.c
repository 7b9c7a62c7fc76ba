/* ctime is the C target of the clock agent's tests: for each line on
 * stdin it prints what glibc's clock_gettime(CLOCK_REALTIME),
 * gettimeofday and time return, in nanoseconds, nanoseconds and seconds,
 * and CLOCK_MONOTONIC in nanoseconds. With --http PORT it instead answers
 * every HTTP request on PORT with the same line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int line(char *buf, size_t n) {
	struct timespec rt, mono;
	struct timeval tv;
	time_t t1, t2;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	gettimeofday(&tv, NULL);
	t1 = time(&t2);
	if (t1 != t2) return snprintf(buf, n, "time() %lld != *tloc %lld\n", (long long)t1, (long long)t2);
	return snprintf(buf, n, "%lld %lld %lld %lld\n",
		(long long)rt.tv_sec * 1000000000LL + rt.tv_nsec,
		(long long)tv.tv_sec * 1000000000LL + (long long)tv.tv_usec * 1000LL,
		(long long)t1,
		(long long)mono.tv_sec * 1000000000LL + mono.tv_nsec);
}

int main(int argc, char **argv) {
	char buf[256], req[4096];
	if (argc == 3 && strcmp(argv[1], "--http") == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		struct sockaddr_in a = {0};
		a.sin_family = AF_INET;
		a.sin_port = htons(atoi(argv[2]));
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
			perror("listen");
			return 1;
		}
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0) continue;
			if (read(c, req, sizeof req) > 0) {
				char out[512];
				int n = line(buf, sizeof buf);
				int m = snprintf(out, sizeof out,
					"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", n, buf);
				if (write(c, out, m) < 0) perror("write");
			}
			close(c);
		}
	}
	while (fgets(req, sizeof req, stdin)) {
		line(buf, sizeof buf);
		fputs(buf, stdout);
		fflush(stdout);
	}
	return 0;
}
