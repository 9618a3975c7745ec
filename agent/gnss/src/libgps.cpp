// libgps loaded at run time (libgps.h): dlopen of the build's soname and
// dlsym of each function GpsdSource calls, once per process once it worked.
#include "libgps.h"

#include <dlfcn.h>

#include <mutex>
#include <optional>
#include <string>

namespace eport::gnss::detail {

namespace {

// The Debian package that ships a soname "libNAME.so.N": libNAMEN.
std::string package_of(std::string_view soname) {
  const auto so = soname.find(".so.");
  if (so == std::string_view::npos) return std::string(soname);
  return std::string(soname.substr(0, so)) + std::string(soname.substr(so + 4));
}

// fn = the library's `name`; a name it lacks is added to `missing`.
template <typename F>
void bind_symbol(void* lib, const char* name, F& fn, std::string& missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (fn == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
}

}  // namespace

Result<LibGps> load_libgps(const char* soname) {
  void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    return Error{std::string(soname) + " could not be loaded (" + (why ? why : "dlopen failed") + "): install " +
                 package_of(soname) + " for gnss.source = \"gpsd\""};
  }
  LibGps table{};
  std::string missing;
  bind_symbol(lib, "gps_open", table.open, missing);
  bind_symbol(lib, "gps_close", table.close, missing);
  bind_symbol(lib, "gps_stream", table.stream, missing);
  bind_symbol(lib, "gps_read", table.read, missing);
  bind_symbol(lib, "gps_waiting", table.waiting, missing);
  bind_symbol(lib, "gps_errstr", table.errstr, missing);
  if (!missing.empty()) {
    dlclose(lib);
    return Error{std::string(soname) + " lacks " + missing + ": not the libgps this agent was built for"};
  }
  return table;  // lib stays open for the process's life
}

Result<const LibGps*> LibGpsOnce::get(const char* soname) {
  std::lock_guard lock(mu_);
  if (loaded_) return &*loaded_;
  auto table = load_libgps(soname);
  if (!table) return Error{table.error()};
  loaded_ = *table;
  return &*loaded_;
}

Result<const LibGps*> libgps() {
  static LibGpsOnce once;
  return once.get(EPORT_LIBGPS_SONAME);
}

}  // namespace eport::gnss::detail
