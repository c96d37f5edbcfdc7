// lib/smtp/reply.cc -- see reply.h.
#include "lib/smtp/reply.h"
