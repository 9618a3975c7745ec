// The [store] tests' VFS shims below SQLite (store_faults_test: one armed
// fault; store_power_cut_test: lose what was not synced) share this: a file
// of the shim starts with ShimFile (SQLite's sqlite3_file, then the default
// VFS's file, which lives in the same allocation after the shim's struct),
// and every method a shim does not change passes straight to that file.
#pragma once

#include <sqlite3.h>

namespace eport::test::vfs {

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
};

inline sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

inline int read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return real(f)->pMethods->xRead(real(f), buf, n, off);
}
inline int file_size(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
inline int lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
inline int unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
inline int check_reserved(sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); }
inline int file_control(sqlite3_file* f, int op, void* arg) { return real(f)->pMethods->xFileControl(real(f), op, arg); }
inline int sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
inline int device_chars(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
inline int shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, p);
}
inline int shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
inline void shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
inline int shm_unmap(sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); }

}  // namespace eport::test::vfs
