// lib/smtp/dot_stuffer.cc -- see dot_stuffer.h.
#include "lib/smtp/dot_stuffer.h"
