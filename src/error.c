/* SPDX-License-Identifier: MIT */
/* error.c - what each errno means when takt returns it. */
#include <errno.h>
#include <string.h>

#include "internal.h"

const char *takt_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0: return "success";
	case EINVAL: return "invalid argument (channel name, geometry or parameter)";
	case EEXIST: return "a channel of that name already exists";
	case ENOENT: return "no such channel (or one of its semaphores is missing)";
	case EACCES: return "permission denied by the channel's file mode";
	case ENOSPC: return "not enough space in /dev/shm for the channel";
	case EAGAIN: return "ring full or empty (or channel not ready yet): try again";
	case EMSGSIZE: return "record too large for the channel, or receive buffer too small";
	case EBADMSG: return "corrupted or foreign channel segment (lane marked broken)";
	case EPROTONOSUPPORT: return "channel layout version not supported by this library";
	case EBUSY: return "endpoint slot held by a live process";
	case ETIMEDOUT: return "deadline reached";
	case EALREADY: return "nothing reserved or peeked to commit or release";
	case ENOMEM: return "out of memory";
	case EPROTOTYPE: return "wrong kind of channel (queue call on a state channel, or the reverse)";
	default: return strerror(err);
	}
}
