// services/reinject/delivery/mime_downgrade.cc -- see mime_downgrade.h.
#include "services/reinject/delivery/mime_downgrade.h"

#include <fcntl.h>
#include <gmime/gmime.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {

void OwnedFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

constexpr size_t kChunkBytes = 64 * 1024;

void InitGmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

bool Has8Bit(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

// Whether the content holds a byte >= 0x80.
absl::StatusOr<bool> ContentHas8Bit(const MessageContent& content) {
  std::vector<char> buf(kChunkBytes);
  uint64_t offset = 0;
  for (;;) {
    auto n = content.Read(offset, buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) return false;
    if (Has8Bit(std::string_view(buf.data(), *n))) return true;
    offset += *n;
  }
}

// Whether the file open as `fd` holds a byte >= 0x80; its size in `*size`.
absl::StatusOr<bool> FileHas8Bit(int fd, uint64_t* size) {
  std::vector<char> buf(kChunkBytes);
  off_t offset = 0;
  bool found = false;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read");
    if (n == 0) break;
    offset += n;
    found = found || Has8Bit(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  *size = static_cast<uint64_t>(offset);
  return found;
}

// Whether a GMime stream (a part's raw body, as it is in the file) holds a byte >= 0x80.
bool StreamHas8Bit(GMimeStream* stream) {
  if (stream == nullptr) return false;
  g_mime_stream_reset(stream);
  char buf[8192];
  bool found = false;
  for (;;) {
    ssize_t n = g_mime_stream_read(stream, buf, sizeof buf);
    if (n <= 0) break;
    if (Has8Bit(std::string_view(buf, static_cast<size_t>(n)))) {
      found = true;
      break;
    }
  }
  g_mime_stream_reset(stream);
  return found;
}

// An unnamed file in `dir` (O_TMPFILE); where the file system lacks it, a named one that is
// unlinked at once (a crash in between leaves it to the queue's orphan sweep).
absl::StatusOr<OwnedFd> TempFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return OwnedFd(fd);
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return ErrnoStatus(errno, "create a file in " + dir);
  std::string name = dir + "/.downgrade-XXXXXX";
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "create " + name);
  ::unlink(name.c_str());
  return OwnedFd(fd);
}

// Walks the parsed message and re-encodes what holds 8-bit data, or says why it cannot.
class Converter {
 public:
  // False when the message cannot be made 7-bit (`reason()`, `in_header()` say why).
  bool Message(GMimeMessage* message, int depth) {
    if (!Headers(GMIME_OBJECT(message), "the message header")) return false;
    GMimeObject* body = g_mime_message_get_mime_part(message);
    return body == nullptr || Object(body, depth);
  }

  bool converted() const { return converted_; }
  const std::string& reason() const { return reason_; }
  bool in_header() const { return in_header_; }

 private:
  bool Fail(std::string reason) {
    reason_ = std::move(reason);
    return false;
  }

  bool Headers(GMimeObject* object, std::string_view where) {
    GMimeHeaderList* list = g_mime_object_get_header_list(object);
    if (list == nullptr) return true;
    const int n = g_mime_header_list_get_count(list);
    for (int i = 0; i < n; ++i) {
      GMimeHeader* header = g_mime_header_list_get_header_at(list, i);
      const char* name = g_mime_header_get_name(header);
      const char* raw = g_mime_header_get_raw_value(header);
      if ((name != nullptr && Has8Bit(name)) || (raw != nullptr && Has8Bit(raw))) {
        in_header_ = true;
        return Fail(absl::StrCat("8-bit data in ", std::string(where), " field ", name != nullptr ? name : "?"));
      }
    }
    return true;
  }

  static std::string TypeOf(GMimeObject* object) {
    GMimeContentType* ct = g_mime_object_get_content_type(object);
    if (ct == nullptr) return "text/plain";
    char* type = g_mime_content_type_get_mime_type(ct);
    std::string out = type != nullptr ? absl::AsciiStrToLower(type) : "text/plain";
    g_free(type);
    return out;
  }

  // RFC 2045 §6.4: a composite's encoding is 7bit/8bit/binary and says what is inside.
  static void RelabelAs7Bit(GMimeObject* object) {
    const char* cte = g_mime_object_get_header(object, "Content-Transfer-Encoding");
    if (cte == nullptr) return;
    std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(cte));
    if (v == "8bit" || v == "binary") g_mime_object_set_header(object, "Content-Transfer-Encoding", "7bit", nullptr);
  }

  bool Object(GMimeObject* object, int depth) {
    if (depth > kMaxDowngradeDepth) return Fail("MIME parts nested too deep to convert");
    if (!Headers(object, "a MIME part header")) return false;
    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      const char* prologue = g_mime_multipart_get_prologue(multipart);
      const char* epilogue = g_mime_multipart_get_epilogue(multipart);
      if ((prologue != nullptr && Has8Bit(prologue)) || (epilogue != nullptr && Has8Bit(epilogue))) {
        return Fail("8-bit data in the preamble or epilogue of a multipart");
      }
      const int n = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < n; ++i) {
        if (!Object(g_mime_multipart_get_part(multipart, i), depth + 1)) return false;
      }
      RelabelAs7Bit(object);
      return true;
    }
    if (GMIME_IS_MESSAGE_PART(object)) {  // message/rfc822, message/global, message/news
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      if (inner != nullptr && !Message(inner, depth + 1)) return false;
      RelabelAs7Bit(object);
      return true;
    }
    if (!GMIME_IS_PART(object)) return true;
    GMimePart* part = GMIME_PART(object);
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (content == nullptr || !StreamHas8Bit(g_mime_data_wrapper_get_stream(content))) return true;
    const std::string type = TypeOf(object);
    if (type.rfind("message/", 0) == 0) {
      return Fail(absl::StrCat("8-bit data in a ", type, " part, which allows no transfer encoding"));
    }
    switch (g_mime_part_get_content_encoding(part)) {
      case GMIME_CONTENT_ENCODING_DEFAULT:
      case GMIME_CONTENT_ENCODING_7BIT:
      case GMIME_CONTENT_ENCODING_8BIT:
      case GMIME_CONTENT_ENCODING_BINARY:
        g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
        converted_ = true;
        return true;
      default:
        return Fail(absl::StrCat("8-bit data in a ", type, " part that is already transfer-encoded"));
    }
  }

  bool converted_ = false;
  bool in_header_ = false;
  std::string reason_;
};

Downgrade Impossible(std::string reason, bool in_header) {
  Downgrade d;
  d.outcome = DowngradeOutcome::kImpossible;
  d.reason = std::move(reason);
  d.in_header = in_header;
  return d;
}

// GMime objects released at scope end.
struct Unref {
  void operator()(gpointer p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, Unref>;

}  // namespace

absl::StatusOr<Downgrade> DowngradeTo7Bit(const MessageContent& content, const std::string& temp_dir) {
  auto has8 = ContentHas8Bit(content);
  if (!has8.ok()) return has8.status();
  if (!*has8) return Downgrade{};

  InitGmime();
  // The parser reads the content through its own descriptor and keeps part bodies as ranges
  // of it (a persistent, seekable stream), not copies.
  GPtr<GMimeStream> source(content.OpenGMimeStream());
  if (!source) return ErrnoStatus(errno, "open the queue content");
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(source.get()));
  g_mime_parser_set_persist_stream(parser.get(), TRUE);
  GPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!message) return Impossible("the message could not be parsed as MIME", false);

  Converter converter;
  if (!converter.Message(message.get(), 0)) return Impossible(converter.reason(), converter.in_header());
  if (!converter.converted()) return Impossible("8-bit data outside any part that can be re-encoded", false);
  if (g_mime_object_get_header(GMIME_OBJECT(message.get()), "MIME-Version") == nullptr) {
    // A Content-Transfer-Encoding means nothing without it (RFC 2045 §4).
    g_mime_object_set_header(GMIME_OBJECT(message.get()), "MIME-Version", "1.0", nullptr);
  }

  auto temp = TempFile(temp_dir);
  if (!temp.ok()) return temp.status();
  {
    // GMime writes LF line ends; SMTP content has CRLF (RFC 5321 §2.3.8).
    GPtr<GMimeStream> file(g_mime_stream_fs_new(temp->get()));
    g_mime_stream_fs_set_owner(GMIME_STREAM_FS(file.get()), FALSE);
    GPtr<GMimeStream> out(g_mime_stream_filter_new(file.get()));
    GPtr<GMimeFilter> crlf(g_mime_filter_unix2dos_new(FALSE));
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(out.get()), crlf.get());
    if (g_mime_object_write_to_stream(GMIME_OBJECT(message.get()), nullptr, out.get()) < 0 ||
        g_mime_stream_flush(out.get()) != 0) {
      return absl::InternalError("writing the 7-bit copy failed");
    }
  }
  uint64_t converted_size = 0;
  auto left = FileHas8Bit(temp->get(), &converted_size);
  if (!left.ok()) return left.status();
  if (*left) return Impossible("8-bit data outside any part that can be re-encoded", false);
  Downgrade d;
  d.outcome = DowngradeOutcome::kConverted;
  d.copy = *std::move(temp);
  d.size_bytes = converted_size;
  return d;
}

}  // namespace sluice::reinject
