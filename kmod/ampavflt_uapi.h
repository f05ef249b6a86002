/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ampavflt: the user ABI of /dev/ampavflt, the file event device of amp.
 *
 * This header is the only definition of the protocol; ffi/ampavflt.ts mirrors
 * it (and its test compiles a C program against this file to check sizes and
 * offsets). Every field has a fixed width, every struct is padded explicitly
 * to a multiple of 8 bytes, and integers are in the machine's byte order.
 *
 * One process (the daemon) opens the device; a second open fails with EBUSY.
 * Only that process may read or write it (others get EPERM, even with the
 * descriptor). The daemon checks the protocol first: the device's sysfs
 * attribute `version` (/sys/class/misc/ampavflt/version) holds
 * AMPAVFLT_VERSION, and every command carries it (EPROTO otherwise). It then:
 *  - write()s commands (struct ampavflt_command, several per write allowed;
 *    fields a command does not use must be zero, EINVAL otherwise): CONFIG
 *    first (which events it wants, the timeouts and what they answer),
 *    SKIP_DEV for file systems to ignore, then a VERDICT for every event
 *    that has AMPAVFLT_EVF_PERM, CACHE for files it found clean, FORGET when
 *    its signatures or policy change. A write stops at the first command that
 *    fails: it returns that error when it was the first, else the bytes of
 *    the commands done;
 *  - read()s events: each a struct ampavflt_event, followed by path_len bytes
 *    of path (no NUL) and zero padding up to `size` when no descriptor could
 *    be given (AMPAVFLT_EVF_PATH; then fd is -1). A read returns whole
 *    records only; EINVAL when the first record does not fit the buffer
 *    (a path record can take 72 + 4096 bytes). Each fd is a new read-only,
 *    close-on-exec descriptor of the file, owned by the reader, and counts
 *    against its RLIMIT_NOFILE.
 * Closing the device allows every exec still waiting and drops the queue.
 *
 * Timeouts of a waiting exec (AMPAVFLT_EVF_PERM): at most queue_timeout_ms
 * waiting to be read, then at most timeout_ms from the read that delivered
 * it to the daemon; when either passes the exec gets timeout_answer (allow
 * or deny: fail-open or fail-closed). Both are at most
 * AMPAVFLT_MAX_TIMEOUT_MS. A daemon that is gone (the device closed, or its
 * process no longer exists) allows every exec: nothing is held without it.
 *
 * Never reported (execs allowed, counted as `skipped` in the stats): files
 * of network and FUSE file systems (their open may wait forever for a
 * server), kernel pseudo file systems, SB_NOUSER ones but shmem and
 * hugetlbfs (memfd), and of the devices named by SKIP_DEV.
 */
#ifndef _UAPI_LINUX_AMPAVFLT_H
#define _UAPI_LINUX_AMPAVFLT_H

#include <linux/types.h>

/* Protocol version: struct ampavflt_event.version and ampavflt_command.version. */
#define AMPAVFLT_VERSION 2

/* The longest timeout CONFIG takes (ms). */
#define AMPAVFLT_MAX_TIMEOUT_MS 60000

/* struct ampavflt_event.kind */
#define AMPAVFLT_EV_EXEC 1		/* a program is being executed */
#define AMPAVFLT_EV_OPEN_WRITE 2	/* a regular file was opened for writing */
#define AMPAVFLT_EV_CLOSE_WRITE 3	/* a file opened for writing was closed */
#define AMPAVFLT_EV_OVERFLOW 4		/* notifications were lost (see `lost`) */

/* struct ampavflt_event.flags */
#define AMPAVFLT_EVF_PERM 0x1		/* the exec waits for a VERDICT (or a timeout) */
#define AMPAVFLT_EVF_PATH 0x2		/* no fd (-1): the path follows the record */
#define AMPAVFLT_EVF_EXEC_LOST 0x4	/* OVERFLOW: exec notifications were among the lost */
#define AMPAVFLT_EVF_KERNEL 0x8		/* an exec the kernel started (usermode helper): never held */

/* Event mask of AMPAVFLT_CMD_CONFIG (arg). */
#define AMPAVFLT_MASK_EXEC 0x1		/* exec notifications; the exec goes on */
#define AMPAVFLT_MASK_EXEC_PERM 0x2	/* execs held until a verdict (wins over EXEC) */
#define AMPAVFLT_MASK_OPEN_WRITE 0x4
#define AMPAVFLT_MASK_CLOSE_WRITE 0x8

/* struct ampavflt_command.cmd */
#define AMPAVFLT_CMD_VERDICT 1	/* id: the event; arg: ALLOW or DENY */
#define AMPAVFLT_CMD_CONFIG 2	/* arg: event mask; value: timeout_ms (0: 5000);
				 * queue_timeout_ms (0: 5000); timeout_answer */
#define AMPAVFLT_CMD_CACHE 3	/* arg: an fd of a clean file; value: ctime_ns of its event.
				 * EOPNOTSUPP: the module cannot cache at all; EMEDIUMTYPE:
				 * not on this file system; ESTALE: changed since the
				 * event; ETXTBSY: a writer has it; ENOSPC: full */
#define AMPAVFLT_CMD_FORGET 4	/* empty the verdict cache */
#define AMPAVFLT_CMD_SKIP_DEV 5	/* value: st_dev of a file system to ignore (ENOSPC past 256) */

/* AMPAVFLT_CMD_VERDICT arg, and AMPAVFLT_CMD_CONFIG timeout_answer (0 is ALLOW there) */
#define AMPAVFLT_ALLOW 1
#define AMPAVFLT_DENY 2

/* One event as read(2) returns it (72 bytes, then the path when EVF_PATH). */
struct ampavflt_event {
	__u32 size;		/* bytes of this record with its path, a multiple of 8 */
	__u16 version;		/* AMPAVFLT_VERSION */
	__u16 kind;		/* AMPAVFLT_EV_* */
	__u32 flags;		/* AMPAVFLT_EVF_* */
	__s32 fd;		/* descriptor for the reader, or -1 */
	__u64 id;		/* names the event in AMPAVFLT_CMD_VERDICT */
	__u32 pid;		/* thread that caused the event */
	__u32 tgid;		/* its process */
	__u32 uid;		/* its real uid (initial user namespace) */
	__u32 path_len;		/* bytes of path after the record (EVF_PATH), else 0 */
	__u64 dev;		/* st_dev of the file */
	__u64 ino;		/* st_ino of the file */
	__u64 ctime_ns;		/* inode change time at the event, for AMPAVFLT_CMD_CACHE */
	__u64 lost;		/* OVERFLOW: notifications dropped since the last one */
};

/* One command as write(2) takes it (32 bytes; a write may hold several). */
struct ampavflt_command {
	__u16 version;		/* AMPAVFLT_VERSION */
	__u16 cmd;		/* AMPAVFLT_CMD_* */
	__u32 arg;		/* VERDICT: ALLOW or DENY; CONFIG: event mask; CACHE: fd */
	__u64 id;		/* VERDICT: the event */
	__u64 value;		/* CONFIG: timeout_ms; CACHE: ctime_ns; SKIP_DEV: st_dev */
	__u32 queue_timeout_ms;	/* CONFIG: longest wait of an exec before it is read */
	__u32 timeout_answer;	/* CONFIG: ALLOW (or 0) or DENY when a timeout passes */
};

#endif /* _UAPI_LINUX_AMPAVFLT_H */
