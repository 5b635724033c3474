#define _GNU_SOURCE
#include <fcntl.h>
#include "CPetrelSystem.h"

int petrel_start_write_back(int fd) {
#ifdef __linux__
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    return 0;
#endif
}
