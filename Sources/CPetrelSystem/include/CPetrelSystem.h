// System calls Swift's Glibc module does not export (they need _GNU_SOURCE).
#ifndef PETREL_CPETRELSYSTEM_H
#define PETREL_CPETRELSYSTEM_H

/// Starts writing a file's dirty pages back without waiting for them (Linux sync_file_range
/// with SYNC_FILE_RANGE_WRITE); elsewhere it does nothing. It makes nothing durable by itself.
int petrel_start_write_back(int fd);

#endif
