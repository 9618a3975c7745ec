// Implementation of the SQLite wrappers: opening, exec and prepare with
// error messages that name the statement.
#include "sqlite.h"

namespace eport::store::sqlite {

Status Db::open(const std::string& path, int flags, const std::string& vfs) {
  close();
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    close();
    return Error{msg};
  }
  sqlite3_extended_result_codes(db_, 1);
  return ok_status();
}

void Db::close() {
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

Status Db::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = std::string(err ? err : "unknown error") + " in: " + s;
    sqlite3_free(err);
    return Error{msg};
  }
  return ok_status();
}

Result<std::int64_t> Db::query_int(std::string_view sql) {
  Stmt s;
  if (auto st = s.prepare(*this, sql); !st) return Error{st.error()};
  int rc = s.step();
  if (rc == SQLITE_ROW) return s.column_int(0);
  if (rc == SQLITE_DONE) return std::int64_t{0};
  return Error{error_message() + " in: " + std::string(sql)};
}

Status Stmt::prepare(Db& db, std::string_view sql) {
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  sql_ = std::string(sql);
  if (sqlite3_prepare_v3(db.get(), sql_.data(), static_cast<int>(sql_.size()), SQLITE_PREPARE_PERSISTENT, &stmt_,
                         nullptr) != SQLITE_OK) {
    return Error{"prepare failed: " + db.error_message() + " in: " + sql_};
  }
  return ok_status();
}

}  // namespace eport::store::sqlite
