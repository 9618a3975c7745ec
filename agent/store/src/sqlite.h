// Thin RAII wrappers over the SQLite C API used by the store: a connection,
// prepared statements that are reset on scope exit, and errors that carry the
// SQL and SQLite's message. Private to the store library.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "eport/model/result.h"

namespace eport::store::sqlite {

class Db {
 public:
  Db() = default;
  ~Db() { close(); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // `vfs`: name of a registered SQLite VFS; empty for the default.
  Status open(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
              const std::string& vfs = {});
  void close();
  sqlite3* get() const { return db_; }
  // Runs one or more statements that return no rows.
  Status exec(std::string_view sql);
  std::string error_message() const { return db_ ? sqlite3_errmsg(db_) : "no database"; }
  // Primary result code of the last failed call (SQLITE_CORRUPT, SQLITE_FULL, ...).
  int error_code() const { return db_ ? (sqlite3_extended_errcode(db_) & 0xff) : SQLITE_CANTOPEN; }
  // True if the last error means the file is not a usable database.
  bool last_error_is_corruption() const {
    int c = error_code();
    return c == SQLITE_CORRUPT || c == SQLITE_NOTADB;
  }
  // Runs a query returning one integer (PRAGMA page_count and the like).
  Result<std::int64_t> query_int(std::string_view sql);

 private:
  sqlite3* db_ = nullptr;
};

class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status prepare(Db& db, std::string_view sql);
  sqlite3_stmt* get() const { return stmt_; }
  const std::string& sql() const { return sql_; }

  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, std::span<const std::uint8_t> v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_null(int i) { sqlite3_bind_null(stmt_, i); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t column_int(int i) const { return sqlite3_column_int64(stmt_, i); }
  bool column_is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  std::string column_text(int i) const {
    const auto* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  std::span<const std::uint8_t> column_blob(int i) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, i));
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))};
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// Resets a statement when leaving scope, so an early return never leaves it
// holding a read transaction open.
class ResetGuard {
 public:
  explicit ResetGuard(Stmt& s) : s_(s) {}
  ~ResetGuard() { s_.reset(); }
  ResetGuard(const ResetGuard&) = delete;
  ResetGuard& operator=(const ResetGuard&) = delete;

 private:
  Stmt& s_;
};

}  // namespace eport::store::sqlite
