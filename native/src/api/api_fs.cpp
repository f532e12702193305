// File copying for the model writers: copyFileRange(srcFd, srcOffset, dstFd, dstOffset, length[, readWrite
// [, writeback]]) copies a byte range between two open files on a libuv worker thread and resolves to
// { bytes, method }. With `writeback` the copied range is handed to the disk right away
// (sync_file_range(SYNC_FILE_RANGE_WRITE), Linux): a later fsync then waits only for the last pieces. On Linux it uses copy_file_range(2) (the in-kernel copy `cp` uses: no user-space
// buffer); where the kernel or file system refuses it (other file systems, old kernels) and when
// `readWrite` is true it copies through a 1 MiB buffer with pread/pwrite. Failures reject with an Error
// carrying Node's fields (code 'ENOSPC', errno, syscall) so callers handle them like fs errors.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "api/api.h"

namespace dbt::api {
namespace {

const char* errno_code(int e) {
  switch (e) {
    case ENOSPC: return "ENOSPC";
#ifdef EDQUOT
    case EDQUOT: return "EDQUOT";
#endif
    case EFBIG: return "EFBIG";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EROFS: return "EROFS";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EISDIR: return "EISDIR";
    case EXDEV: return "EXDEV";
    case ENOMEM: return "ENOMEM";
    default: return "EIO";
  }
}

#ifdef __linux__
// The errors after which cp(1) also falls back to a plain read/write copy: the kernel or the file system
// cannot do this copy, nothing was written.
bool kernel_copy_unsupported(int e) {
  return e == ENOSYS || e == EOPNOTSUPP || e == EINVAL || e == EXDEV || e == ETXTBSY || e == EPERM || e == EBADF;
}
#endif

class CopyWorker : public Napi::AsyncWorker {
 public:
  CopyWorker(Napi::Env env, int in_fd, int64_t in_off, int out_fd, int64_t out_off, int64_t length, bool read_write, bool writeback)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        in_fd_(in_fd), out_fd_(out_fd), in_off_(in_off), out_off_(out_off), length_(length), kernel_(!read_write),
        writeback_(writeback) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
#ifndef __linux__
    kernel_ = false;
#endif
    while (done_ < length_) {
      if (kernel_ && copy_in_kernel()) continue;
      if (failed_ || kernel_) return;
      if (!copy_through_buffer()) return;
    }
#ifdef __linux__
    // Only starts the writes (it does not wait for them); a failure here resurfaces at fsync.
    if (writeback_ && length_ > 0) ::sync_file_range(out_fd_, out_off_, length_, SYNC_FILE_RANGE_WRITE);
#endif
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytes", Napi::Number::New(env, double(done_)));
    r.Set("method", Napi::String::New(env, kernel_ ? "copy_file_range" : "read/write"));
    deferred_.Resolve(r);
  }

  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    Napi::Error err = Napi::Error::New(env, e.Message());
    if (errno_ != 0) {
      err.Set("code", Napi::String::New(env, errno_code(errno_)));
      err.Set("errno", Napi::Number::New(env, -errno_));
      err.Set("syscall", Napi::String::New(env, syscall_));
    } else {
      err.Set("code", Napi::String::New(env, "DBT_SHORT_READ"));
    }
    err.Set("bytesCopied", Napi::Number::New(env, double(done_)));
    deferred_.Reject(err.Value());
  }

 private:
  void fail(const char* syscall, int e) {
    failed_ = true;
    errno_ = e;
    syscall_ = syscall;
    SetError(std::string(syscall) + ": " + std::strerror(e) + " after " + std::to_string(done_) + " of " +
             std::to_string(length_) + " bytes");
  }
  void short_read() {
    failed_ = true;
    SetError("the source ended at byte " + std::to_string(in_off_ + done_) + ", " + std::to_string(length_ - done_) +
             " bytes before the end of the range (the file shrank while being copied?)");
  }

#ifdef __linux__
  // One copy_file_range call; false when it failed (`kernel_` cleared when a buffered copy should go on).
  bool copy_in_kernel() {
    loff_t in = in_off_ + done_, out = out_off_ + done_;
    size_t want = size_t(std::min<int64_t>(length_ - done_, int64_t(1) << 30));
    ssize_t n = ::copy_file_range(in_fd_, &in, out_fd_, &out, want, 0);
    if (n > 0) {
      done_ += n;
      return true;
    }
    if (n == 0) {
      short_read();
      return false;
    }
    if (errno == EINTR) return true;
    if (kernel_copy_unsupported(errno)) {
      kernel_ = false;
      return false;
    }
    fail("copy_file_range", errno);
    return false;
  }
#else
  bool copy_in_kernel() { return false; }
#endif

  bool copy_through_buffer() {
    if (buffer_.empty()) buffer_.resize(size_t(1) << 20);
    size_t want = size_t(std::min<int64_t>(length_ - done_, int64_t(buffer_.size())));
    ssize_t n = ::pread(in_fd_, buffer_.data(), want, off_t(in_off_ + done_));
    if (n < 0) {
      if (errno == EINTR) return true;
      fail("read", errno);
      return false;
    }
    if (n == 0) {
      short_read();
      return false;
    }
    for (ssize_t put = 0; put < n;) {
      ssize_t w = ::pwrite(out_fd_, buffer_.data() + put, size_t(n - put), off_t(out_off_ + done_ + put));
      if (w < 0) {
        if (errno == EINTR) continue;
        done_ += put;
        fail("write", errno);
        return false;
      }
      put += w;
    }
    done_ += n;
    return true;
  }

  Napi::Promise::Deferred deferred_;
  int in_fd_, out_fd_;
  int64_t in_off_, out_off_, length_;
  bool kernel_;
  bool writeback_;
  int64_t done_ = 0;
  bool failed_ = false;
  int errno_ = 0;
  const char* syscall_ = "";
  std::vector<char> buffer_;
};

int64_t arg_count(const Napi::CallbackInfo& info, size_t i, const char* what) {
  double v = arg_number(info, i);
  if (!(v >= 0 && v <= 9007199254740991.0) || v != double(int64_t(v)))
    throw Error(std::string("copyFileRange: ") + what + " must be a non-negative integer");
  return int64_t(v);
}

Napi::Value CopyFileRangeFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    int in_fd = int(arg_count(info, 0, "the source descriptor"));
    int64_t in_off = arg_count(info, 1, "the source offset");
    int out_fd = int(arg_count(info, 2, "the destination descriptor"));
    int64_t out_off = arg_count(info, 3, "the destination offset");
    int64_t length = arg_count(info, 4, "the length");
    bool read_write = arg_bool_or(info, 5, false);
    bool writeback = arg_bool_or(info, 6, false);
    auto* w = new CopyWorker(info.Env(), in_fd, in_off, out_fd, out_off, length, read_write, writeback);
    Napi::Promise p = w->promise();
    w->Queue();
    return Napi::Value(p);
  });
}

}  // namespace

void RegisterFs(Napi::Env env, Napi::Object exports) { set_function(env, exports, "copyFileRange", CopyFileRangeFn); }

}  // namespace dbt::api
