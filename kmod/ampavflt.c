// SPDX-License-Identifier: GPL-2.0
/*
 * ampavflt: file events for amp's daemon through /dev/ampavflt, for kernels
 * where fanotify permission events are missing or unusable.
 *
 * Design
 * ------
 * Hooks (chosen to be sleepable where the daemon must answer, and to use
 * only exported or long-stable interfaces):
 *  - Exec: a binary format handler inserted first in the kernel's list
 *    (insert_binfmt). search_binary_handler() calls ->load_binary() for
 *    every exec (and again for a script's interpreter) in the process
 *    context of the exec, after prepare_binprm() and the LSM check, before
 *    the point of no return; it may sleep. Returning -ENOEXEC passes the
 *    exec on to the real handlers (ELF, script, misc); -EPERM refuses it.
 *    This has existed unchanged since Linux 2.6 (RHEL 6's 2.6.32 included)
 *    and needs no symbol lookup, no ftrace IPMODIFY and nothing that IBT or
 *    CFI can break; the kernel's own try_module_get() on the handler keeps
 *    the module in place while an exec waits in it. kprobes on
 *    security_bprm_check fire but cannot sleep, which is why they are not
 *    used for execs.
 *  - Open for write: a kprobe on security_file_open (every open, after
 *    get_write_access(), with f_path set). Notification only.
 *  - Close after write: a kprobe on __fput (the last reference of a file,
 *    where fsnotify reports FAN_CLOSE_WRITE); where that symbol cannot be
 *    probed, filp_close (a close(2) or exit of a descriptor whose file has
 *    no other reference). Notification only.
 *  - Superblock shutdown: a kprobe on generic_shutdown_super drops the
 *    verdict cache entries of the dying superblock (spinlock and kfree
 *    only). Without it the cache is off (CMD_CACHE: EOPNOTSUPP), as it is
 *    without the open probe (a writer would go unseen).
 *   kprobe handlers run with preemption off: they check the queue bound
 *   before allocating, allocate with GFP_NOWAIT (a failure is counted as
 *   lost, so the daemon gets an OVERFLOW record and rescans), take a path
 *   reference and queue; every descriptor is made later, in read(), in the
 *   daemon's context.
 * Kernels: built without warnings and run (tests/kmod_vm_test.ts) on
 * Debian 12's 6.1 (x86_64). The hooks themselves exist from 2.6 on; the
 * helpers used here set the floor at 5.10 (sysfs_emit; also
 * regs_get_kernel_argument 5.0, PIDTYPE_TGID and FMODE_OPENED 4.19,
 * __poll_t 4.16), and inode_get_ctime() is used from 6.6 on. A build for an
 * older kernel (RHEL 6/7 era) needs small compatibility shims for those,
 * not another design.
 *
 * What is never reported (avflt_skip_path(), checked in every hook before
 * anything is allocated, queued or opened): files whose open may wait for
 * another host or a user-space server (FUSE, fuseblk included, NFS, SMB,
 * Ceph, AFS, 9p, Coda ...: read() opens each reported file in the daemon,
 * whose one thread must never hang there), kernel pseudo file systems
 * (proc, sysfs, cgroup ...), SB_NOUSER ones (pipes, sockets, anon inodes)
 * except shmem and hugetlbfs, whose internal mounts hold memfds (a program
 * run from a memfd is exactly what must be seen), and the devices the
 * daemon names with CMD_SKIP_DEV (those its fanotify backend skips too).
 * overlayfs is looked through: its real file counts. An exec of a skipped
 * file is allowed and counted (`skipped`), as the fanotify backend does
 * not watch such mounts either. Writes to overlayfs backing files
 * (FMODE_NOACCOUNT on 6.1, FMODE_BACKING later) are not reported twice:
 * the overlay file's own event stands for them.
 *
 * Queues and lifetimes: all under avflt.lock (a spinlock; kprobe context).
 *  - perm: exec events waiting to be read (unbounded: each holds a blocked
 *    process); notif: other events, bounded by AVFLT_MAX_NOTIF (beyond it
 *    they are counted in `lost` and an OVERFLOW record is read first);
 *    held: exec events delivered and not answered yet. Each list keeps a
 *    count (stats reads those, never walks a list).
 *  - An event is refcounted: one reference for the list it is on (or the
 *    reader that took a notification off), one for the exec waiting on it,
 *    one for a reader copying a waiting exec's record. The last put drops
 *    its path reference, which may sleep: puts happen only in process
 *    context (read, write, release, the exec), never in a kprobe.
 *  - A waiting exec moves from perm to held before its record is copied
 *    (another thread of the daemon may answer as soon as it sees it), and
 *    back to the head of perm when the copy fails.
 *  - An exec waits killably on its own wait queue, in slices of at most a
 *    second (the hung-task detector never sees a long sleep, and a daemon
 *    that is gone is noticed): at most queue_timeout from when it was
 *    queued while nobody read it, then at most timeout from its delivery.
 *    When one passes it gets the configured timeout answer (allow or deny),
 *    counted. A verdict for an event that timed out gets ENOENT.
 *  - The daemon is whoever opened the device (one at a time, CAP_SYS_ADMIN):
 *    avflt.daemon holds a reference to its thread group's struct pid from
 *    open to release; hooks compare it without the lock and dereference it
 *    only under it. read() and write() of other processes get EPERM. A
 *    daemon whose process is gone (the descriptor outlived it) counts as
 *    none: nothing is queued and waiting execs are allowed. Events of its
 *    thread group are never queued; execs of its direct children and execs
 *    the kernel starts (usermode helpers: modprobe for request_module(),
 *    core dump pipes; no mm of their own) are reported without being held
 *    (the daemon may be waiting in a syscall for that very exec). When the
 *    device is released, every exec waiting is allowed, both queues are
 *    dropped and the cache emptied.
 *  - Verdict cache (avflt.cache_lock): (superblock, ino) -> generation,
 *    ctime, size of files the daemon found clean (CMD_CACHE). An exec of a
 *    cached, unchanged file with no writer is allowed without an event.
 *    Entries are added only while the file has no writer and removed when
 *    a writer opens it (the open hook runs after get_write_access(), so a
 *    writer is either seen by the CACHE check or removes the entry after
 *    it), and when their superblock shuts down (so a new file system at the
 *    same address never matches). Never cached: skipped file systems and
 *    overlayfs (its files change under another path: the real file's).
 *    Limits: a file system that reuses inode numbers with the same
 *    generation (0 on some) is matched on ctime and size too; a change made
 *    below the file system (the block device written directly) is not seen.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/binfmts.h>
#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/device.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kdev_t.h>
#include <linux/kprobes.h>
#include <linux/list.h>
#include <linux/magic.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/path.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/ptrace.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#include "ampavflt_uapi.h"

/* Magics that not every kernel's linux/magic.h has. */
#ifndef CIFS_SUPER_MAGIC
#define CIFS_SUPER_MAGIC 0xFF534D42
#endif
#ifndef SMB2_SUPER_MAGIC
#define SMB2_SUPER_MAGIC 0xFE534D42
#endif
#ifndef RDTGROUP_SUPER_MAGIC
#define RDTGROUP_SUPER_MAGIC 0x7655821
#endif

#define AVFLT_MAX_NOTIF 16384
#define AVFLT_DEFAULT_TIMEOUT_MS 5000
#define AVFLT_WAIT_SLICE HZ
#define AVFLT_MAX_CACHE 65536
#define AVFLT_CACHE_BITS 12
#define AVFLT_MAX_SKIP_DEV 256
#define AVFLT_KPROBE_GFP (GFP_NOWAIT | __GFP_NOWARN)

/* Answers of an exec event (avflt_event.answer). */
enum avflt_answer {
	AVFLT_PENDING = 0,
	AVFLT_ANSWER_ALLOW,
	AVFLT_ANSWER_DENY,
	AVFLT_ANSWER_TIMEOUT,		/* delivered, not answered in time */
	AVFLT_ANSWER_QUEUE_TIMEOUT,	/* not read in time */
	AVFLT_ANSWER_RELEASED,		/* allowed: the daemon is gone */
	AVFLT_ANSWER_KILLED,		/* the waiting process got a fatal signal */
};

struct avflt_event {
	struct list_head list;	/* perm, notif or held; empty when off them */
	refcount_t ref;
	u64 id;
	u16 kind;
	u32 flags;		/* AMPAVFLT_EVF_* */
	pid_t pid;
	pid_t tgid;
	u32 uid;
	struct path path;
	u64 dev;
	u64 ino;
	u64 ctime_ns;
	/* Waiting execs (AMPAVFLT_EVF_PERM) only; under avflt.lock: */
	int answer;		/* enum avflt_answer */
	bool delivered;		/* on held (else on perm, while listed) */
	bool timeout_deny;	/* the answer when a timeout passes */
	unsigned long queued_at;	/* jiffies */
	unsigned long delivered_at;	/* jiffies */
	unsigned long queue_timeout;	/* jiffies */
	unsigned long timeout;		/* jiffies */
	wait_queue_head_t wq;	/* the exec waits here for its answer */
};

struct avflt_cache_entry {
	struct hlist_node node;
	const struct super_block *sb;	/* compared, never dereferenced */
	unsigned long ino;
	u32 generation;
	u64 ctime_ns;
	loff_t size;
};

static struct {
	spinlock_t lock;
	struct list_head perm;
	struct list_head notif;
	struct list_head held;
	unsigned int perm_count;	/* the lists' lengths (READ_ONCE outside the lock) */
	unsigned int notif_count;
	unsigned int held_count;
	u64 lost;		/* since the last OVERFLOW record */
	bool lost_exec;
	u64 next_id;
	struct pid *daemon;	/* the reader's thread group; NULL: none */
	pid_t daemon_nr;	/* its pid, for stats */
	u32 mask;		/* AMPAVFLT_MASK_* (READ_ONCE in hooks) */
	bool timeout_deny;
	unsigned long timeout;	/* jiffies, from delivery */
	unsigned long queue_timeout;	/* jiffies, from queueing */
	wait_queue_head_t read_wq;
	/* Appended under lock while a daemon is registered; read without it. */
	unsigned int skip_count;	/* smp_store_release / smp_load_acquire */
	dev_t skip_dev[AVFLT_MAX_SKIP_DEV];

	spinlock_t cache_lock;
	unsigned int cache_count;
	DECLARE_HASHTABLE(cache, AVFLT_CACHE_BITS);
} avflt;

static struct {
	atomic64_t events;
	atomic64_t execs_held;
	atomic64_t allowed;
	atomic64_t denied;
	atomic64_t timeouts;
	atomic64_t queue_timeouts;
	atomic64_t timeout_denials;
	atomic64_t released;
	atomic64_t lost;
	atomic64_t own;
	atomic64_t kernel_execs;
	atomic64_t skipped;
	atomic64_t cache_hits;
	atomic64_t no_fd;
} stats;

static struct kmem_cache *avflt_event_cache;
static bool open_hooked;
static bool super_hooked;
static const char *close_hook = "none";
static bool close_hook_is_filp_close;

static u64 inode_ctime_ns(struct inode *inode)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	struct timespec64 ts = inode_get_ctime(inode);
#else
	struct timespec64 ts = inode->i_ctime;
#endif
	return (u64)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* True when events of the current task are never queued (the daemon's own). */
static bool avflt_own(const struct pid *daemon)
{
	if (task_tgid(current) != daemon)
		return false;
	atomic64_inc(&stats.own);
	return true;
}

/* Whether the current exec's parent is the daemon (the daemon may be waiting for it). */
static bool avflt_daemon_child(const struct pid *daemon)
{
	bool child;

	rcu_read_lock();
	child = task_tgid(rcu_dereference(current->real_parent)) == daemon;
	rcu_read_unlock();
	return child;
}

/* Under avflt.lock: a daemon is registered and its process still exists. */
static bool avflt_listening(void)
{
	bool alive;

	if (!avflt.daemon)
		return false;
	rcu_read_lock();
	alive = pid_task(avflt.daemon, PIDTYPE_TGID) != NULL;
	rcu_read_unlock();
	return alive;
}

/* ---- file systems never reported ---- */

/* Files of @sb are never reported: see "What is never reported" above. */
static bool avflt_skip_sb(const struct super_block *sb)
{
	unsigned int i, n;

	switch (sb->s_magic) {
	/* A server (remote, or a user-space process) answers the open. */
	case FUSE_SUPER_MAGIC:
	case NFS_SUPER_MAGIC:
	case SMB_SUPER_MAGIC:
	case CIFS_SUPER_MAGIC:
	case SMB2_SUPER_MAGIC:
	case CEPH_SUPER_MAGIC:
	case AFS_SUPER_MAGIC:
	case AFS_FS_MAGIC:
	case CODA_SUPER_MAGIC:
	case V9FS_MAGIC:
	case NCP_SUPER_MAGIC:
	case OCFS2_SUPER_MAGIC:
	/* Kernel views of state. */
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case SELINUX_MAGIC:
	case SMACK_MAGIC:
	case BPF_FS_MAGIC:
	case PSTOREFS_MAGIC:
	case EFIVARFS_MAGIC:
	case DEVPTS_SUPER_MAGIC:
	case BINFMTFS_MAGIC:
	case RDTGROUP_SUPER_MAGIC:
	case NSFS_MAGIC:
		return true;
	/* Internal mounts of these hold memfds: reported. */
	case TMPFS_MAGIC:
	case HUGETLBFS_MAGIC:
		break;
	default:
		if (sb->s_flags & SB_NOUSER)
			return true;
		break;
	}
	n = smp_load_acquire(&avflt.skip_count);
	for (i = 0; i < n; i++)
		if (READ_ONCE(avflt.skip_dev[i]) == sb->s_dev)
			return true;
	return false;
}

/* Whether events of the file at @path are never queued; overlayfs is looked through. */
static bool avflt_skip_path(const struct path *path)
{
	struct dentry *dentry = path->dentry;
	struct inode *real;

	if (avflt_skip_sb(dentry->d_sb))
		return true;
	if (!(dentry->d_flags & DCACHE_OP_REAL))
		return false;
	real = d_real_inode(dentry);
	return real && avflt_skip_sb(real->i_sb);
}

/* An overlayfs (or cachefiles) backing file, opened by the kernel for another file. */
static bool avflt_backing_file(const struct file *file)
{
#if defined(FMODE_BACKING)
	return file->f_mode & FMODE_BACKING;
#elif defined(FMODE_NOACCOUNT)
	return file->f_mode & FMODE_NOACCOUNT;
#else
	return false;
#endif
}

/* CMD_SKIP_DEV: files of device @dev are no longer reported. */
static int avflt_skip_dev(dev_t dev)
{
	unsigned int i, n;
	int ret = 0;

	spin_lock_irq(&avflt.lock);
	n = avflt.skip_count;
	for (i = 0; i < n; i++)
		if (avflt.skip_dev[i] == dev)
			goto out;
	if (n >= AVFLT_MAX_SKIP_DEV) {
		ret = -ENOSPC;
		goto out;
	}
	WRITE_ONCE(avflt.skip_dev[n], dev);
	smp_store_release(&avflt.skip_count, n + 1);
out:
	spin_unlock_irq(&avflt.lock);
	return ret;
}

/* ---- events and queues ---- */

/* A new event for @path (no path reference yet: see avflt_queue()). */
static struct avflt_event *avflt_event_new(u16 kind, u32 flags, const struct path *path,
					   gfp_t gfp)
{
	struct inode *inode = d_inode(path->dentry);
	struct avflt_event *ev = kmem_cache_zalloc(avflt_event_cache, gfp);

	if (!ev)
		return NULL;
	INIT_LIST_HEAD(&ev->list);
	refcount_set(&ev->ref, 1);
	init_waitqueue_head(&ev->wq);
	ev->kind = kind;
	ev->flags = flags;
	ev->pid = current->pid;
	ev->tgid = current->tgid;
	ev->uid = from_kuid(&init_user_ns, current_uid());
	ev->path = *path;
	ev->dev = new_encode_dev(inode->i_sb->s_dev);
	ev->ino = inode->i_ino;
	ev->ctime_ns = inode_ctime_ns(inode);
	return ev;
}

/* Drops a reference; the last one releases the path. Process context only. */
static void avflt_event_put(struct avflt_event *ev)
{
	if (!refcount_dec_and_test(&ev->ref))
		return;
	path_put(&ev->path);
	kmem_cache_free(avflt_event_cache, ev);
}

/* Under avflt.lock: a notification of @kind was dropped; an OVERFLOW record will say so. */
static void avflt_lose_locked(u16 kind)
{
	avflt.lost++;
	if (kind == AMPAVFLT_EV_EXEC)
		avflt.lost_exec = true;
	atomic64_inc(&stats.lost);
}

/* A notification could not be queued (queue full, no memory): counted while a daemon listens. */
static void avflt_lose(u16 kind)
{
	unsigned long flags;
	bool listening;

	spin_lock_irqsave(&avflt.lock, flags);
	listening = avflt.daemon != NULL;
	if (listening)
		avflt_lose_locked(kind);
	spin_unlock_irqrestore(&avflt.lock, flags);
	if (listening)
		wake_up_interruptible(&avflt.read_wq);
}

/*
 * Queues @ev (its list reference) when a daemon listens, taking the path
 * reference and, for a waiting exec, the configuration under the lock.
 * Returns false when nobody listens or the notification queue is full:
 * @ev then holds no path reference and the caller frees it with
 * kmem_cache_free().
 */
static bool avflt_queue(struct avflt_event *ev)
{
	bool queued = false, lost = false;
	unsigned long flags;

	spin_lock_irqsave(&avflt.lock, flags);
	if (!avflt_listening()) {
		/* nobody to tell */
	} else if (ev->flags & AMPAVFLT_EVF_PERM) {
		ev->queued_at = jiffies;
		ev->queue_timeout = avflt.queue_timeout;
		ev->timeout = avflt.timeout;
		ev->timeout_deny = avflt.timeout_deny;
		list_add_tail(&ev->list, &avflt.perm);
		avflt.perm_count++;
		queued = true;
	} else if (avflt.notif_count >= AVFLT_MAX_NOTIF) {
		avflt_lose_locked(ev->kind);
		lost = true;
	} else {
		list_add_tail(&ev->list, &avflt.notif);
		avflt.notif_count++;
		queued = true;
	}
	if (queued) {
		ev->id = ++avflt.next_id;
		path_get(&ev->path);
	}
	spin_unlock_irqrestore(&avflt.lock, flags);
	if (queued)
		atomic64_inc(&stats.events);
	if (queued || lost)
		wake_up_interruptible(&avflt.read_wq);
	return queued;
}

/* Queues a notification; from kprobes with AVFLT_KPROBE_GFP. Checks the bound before allocating. */
static void avflt_report(u16 kind, u32 flags, const struct path *path, gfp_t gfp)
{
	struct avflt_event *ev;

	if (READ_ONCE(avflt.notif_count) >= AVFLT_MAX_NOTIF) {
		avflt_lose(kind);
		return;
	}
	ev = avflt_event_new(kind, flags, path, gfp);
	if (!ev) {
		avflt_lose(kind);
		return;
	}
	if (!avflt_queue(ev))
		kmem_cache_free(avflt_event_cache, ev);
}

/*
 * Under avflt.lock: gives the waiting exec @ev its @answer and takes it off
 * its list, whose reference is not the last (the exec holds one).
 */
static void avflt_settle(struct avflt_event *ev, int answer)
{
	ev->answer = answer;
	if (list_empty(&ev->list))
		return;
	list_del_init(&ev->list);
	if (ev->delivered)
		avflt.held_count--;
	else
		avflt.perm_count--;
	refcount_dec(&ev->ref);
}

/* The exec of @ev waits for its answer (see "Queues and lifetimes"). Returns the answer. */
static int avflt_wait(struct avflt_event *ev)
{
	unsigned long now, deadline;
	int answer;

	for (;;) {
		spin_lock_irq(&avflt.lock);
		if (ev->answer == AVFLT_PENDING && !avflt_listening())
			avflt_settle(ev, AVFLT_ANSWER_RELEASED);
		now = jiffies;
		deadline = ev->delivered ? ev->delivered_at + ev->timeout :
					   ev->queued_at + ev->queue_timeout;
		if (ev->answer == AVFLT_PENDING && time_after_eq(now, deadline))
			avflt_settle(ev, ev->delivered ? AVFLT_ANSWER_TIMEOUT :
							 AVFLT_ANSWER_QUEUE_TIMEOUT);
		answer = ev->answer;
		spin_unlock_irq(&avflt.lock);
		if (answer != AVFLT_PENDING)
			return answer;
		if (wait_event_killable_timeout(ev->wq, READ_ONCE(ev->answer) != AVFLT_PENDING,
						min_t(unsigned long, deadline - now,
						      AVFLT_WAIT_SLICE)) < 0)
			break;
	}
	spin_lock_irq(&avflt.lock);
	if (ev->answer == AVFLT_PENDING)
		avflt_settle(ev, AVFLT_ANSWER_KILLED);
	answer = ev->answer;
	spin_unlock_irq(&avflt.lock);
	return answer;
}

/* ---- verdict cache ---- */

/* The hash key of a file (hash_add() and hash_for_each_possible() hash it again). */
static u64 avflt_cache_key(const struct super_block *sb, unsigned long ino)
{
	return (u64)(uintptr_t)sb ^ ino;
}

static struct avflt_cache_entry *avflt_cache_find(const struct inode *inode)
{
	struct avflt_cache_entry *e;

	hash_for_each_possible(avflt.cache, e, node, avflt_cache_key(inode->i_sb, inode->i_ino))
		if (e->sb == inode->i_sb && e->ino == inode->i_ino)
			return e;
	return NULL;
}

/* Whether the cache may hold the file of @file: a regular file, not stacked, not skipped. */
static bool avflt_cacheable(const struct file *file)
{
	const struct dentry *dentry = file->f_path.dentry;
	const struct inode *inode = file_inode(file);

	return S_ISREG(inode->i_mode) && inode == d_inode(dentry) &&
	       !(dentry->d_flags & DCACHE_OP_REAL) &&
	       inode->i_sb->s_magic != OVERLAYFS_SUPER_MAGIC && !avflt_skip_path(&file->f_path);
}

/* The file was found clean and is unchanged since (same inode generation), with no writer. */
static bool avflt_cache_hit(struct file *file)
{
	struct inode *inode = file_inode(file);
	struct avflt_cache_entry *e;
	unsigned long flags;
	bool hit;

	if (!READ_ONCE(avflt.cache_count) || !avflt_cacheable(file))
		return false;
	spin_lock_irqsave(&avflt.cache_lock, flags);
	e = avflt_cache_find(inode);
	hit = e && e->generation == inode->i_generation &&
	      e->ctime_ns == inode_ctime_ns(inode) && e->size == i_size_read(inode) &&
	      atomic_read(&inode->i_writecount) <= 0;
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	if (hit)
		atomic64_inc(&stats.cache_hits);
	return hit;
}

/* A writer opened the file: its cached verdict no longer holds. */
static void avflt_cache_forget_inode(struct inode *inode)
{
	struct avflt_cache_entry *e;
	unsigned long flags;

	if (!READ_ONCE(avflt.cache_count))
		return;
	spin_lock_irqsave(&avflt.cache_lock, flags);
	e = avflt_cache_find(inode);
	if (e) {
		hash_del(&e->node);
		avflt.cache_count--;
	}
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	kfree(e);
}

static void avflt_cache_clear(void)
{
	struct avflt_cache_entry *e;
	struct hlist_node *tmp;
	unsigned long flags;
	HLIST_HEAD(dead);
	int bkt;

	spin_lock_irqsave(&avflt.cache_lock, flags);
	hash_for_each_safe(avflt.cache, bkt, tmp, e, node) {
		hash_del(&e->node);
		hlist_add_head(&e->node, &dead);
	}
	avflt.cache_count = 0;
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	hlist_for_each_entry_safe(e, tmp, &dead, node)
		kfree(e);
}

/* CMD_CACHE: remembers the file behind the daemon's @fd as clean. */
static int avflt_cache_add(int fd, u64 ctime_ns)
{
	struct avflt_cache_entry *e, *fresh;
	struct inode *inode;
	struct file *file;
	unsigned long flags;
	int ret = 0;

	if (!open_hooked || !super_hooked)
		return -EOPNOTSUPP;
	file = fget(fd);
	if (!file)
		return -EBADF;
	inode = file_inode(file);
	if (!S_ISREG(inode->i_mode)) {
		ret = -EINVAL;
		goto out_fput;
	}
	if (!avflt_cacheable(file)) {
		ret = -EMEDIUMTYPE;
		goto out_fput;
	}
	fresh = kmalloc(sizeof(*fresh), GFP_KERNEL);
	if (!fresh) {
		ret = -ENOMEM;
		goto out_fput;
	}
	/* The file pins its mount, so its superblock cannot shut down meanwhile. */
	spin_lock_irqsave(&avflt.cache_lock, flags);
	if (inode_ctime_ns(inode) != ctime_ns) {
		ret = -ESTALE;		/* changed since the event that was scanned */
	} else if (atomic_read(&inode->i_writecount) > 0) {
		ret = -ETXTBSY;		/* a writer could change it unseen */
	} else {
		e = avflt_cache_find(inode);
		if (!e && avflt.cache_count >= AVFLT_MAX_CACHE) {
			ret = -ENOSPC;
		} else {
			if (!e) {
				e = fresh;
				fresh = NULL;
				e->sb = inode->i_sb;
				e->ino = inode->i_ino;
				hash_add(avflt.cache, &e->node,
					 avflt_cache_key(inode->i_sb, inode->i_ino));
				avflt.cache_count++;
			}
			e->generation = inode->i_generation;
			e->ctime_ns = ctime_ns;
			e->size = i_size_read(inode);
		}
	}
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	kfree(fresh);
out_fput:
	fput(file);
	return ret;
}

/* generic_shutdown_super(sb): drops the dying superblock's entries. kprobe context. */
static int avflt_super_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct super_block *sb = (struct super_block *)regs_get_kernel_argument(regs, 0);
	struct avflt_cache_entry *e;
	struct hlist_node *tmp;
	unsigned long flags;
	int bkt;

	if (!READ_ONCE(avflt.cache_count))
		return 0;
	spin_lock_irqsave(&avflt.cache_lock, flags);
	hash_for_each_safe(avflt.cache, bkt, tmp, e, node) {
		if (e->sb != sb)
			continue;
		hash_del(&e->node);
		avflt.cache_count--;
		kfree(e);
	}
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	return 0;
}

/* ---- hooks ---- */

static int avflt_load_binary(struct linux_binprm *bprm)
{
	struct pid *daemon = READ_ONCE(avflt.daemon);
	u32 mask = READ_ONCE(avflt.mask);
	struct file *file = bprm->file;
	struct avflt_event *ev;
	bool kernel;
	int answer;

	if (!daemon || !(mask & (AMPAVFLT_MASK_EXEC | AMPAVFLT_MASK_EXEC_PERM)))
		return -ENOEXEC;
	if (avflt_own(daemon))
		return -ENOEXEC;
	if (avflt_skip_path(&file->f_path)) {
		atomic64_inc(&stats.skipped);
		return -ENOEXEC;
	}
	if (avflt_cache_hit(file))
		return -ENOEXEC;
	/* Started by the kernel: whatever waits for it may be the daemon, in a syscall. */
	kernel = !current->mm || (current->flags & PF_KTHREAD);
	if (kernel)
		atomic64_inc(&stats.kernel_execs);
	if (!(mask & AMPAVFLT_MASK_EXEC_PERM) || kernel || avflt_daemon_child(daemon)) {
		avflt_report(AMPAVFLT_EV_EXEC, kernel ? AMPAVFLT_EVF_KERNEL : 0, &file->f_path,
			     GFP_KERNEL);
		return -ENOEXEC;
	}
	ev = avflt_event_new(AMPAVFLT_EV_EXEC, AMPAVFLT_EVF_PERM, &file->f_path, GFP_KERNEL);
	if (!ev) {
		avflt_lose(AMPAVFLT_EV_EXEC);
		return -ENOEXEC;
	}
	refcount_inc(&ev->ref);		/* ours, while we wait */
	if (!avflt_queue(ev)) {
		/* Nobody listens any more. */
		kmem_cache_free(avflt_event_cache, ev);
		return -ENOEXEC;
	}
	atomic64_inc(&stats.execs_held);
	answer = avflt_wait(ev);

	switch (answer) {
	case AVFLT_ANSWER_DENY:
		atomic64_inc(&stats.denied);
		break;
	case AVFLT_ANSWER_KILLED:
		break;
	case AVFLT_ANSWER_TIMEOUT:
	case AVFLT_ANSWER_QUEUE_TIMEOUT:
		atomic64_inc(answer == AVFLT_ANSWER_TIMEOUT ? &stats.timeouts :
							      &stats.queue_timeouts);
		if (ev->timeout_deny)
			atomic64_inc(&stats.timeout_denials);
		pr_info_ratelimited("exec of pid %d %s: no verdict within %u ms of %s\n",
				    current->pid, ev->timeout_deny ? "denied" : "allowed",
				    jiffies_to_msecs(answer == AVFLT_ANSWER_TIMEOUT ?
						     ev->timeout : ev->queue_timeout),
				    answer == AVFLT_ANSWER_TIMEOUT ? "its delivery" :
								     "being queued");
		if (ev->timeout_deny)
			answer = AVFLT_ANSWER_DENY;
		break;
	case AVFLT_ANSWER_RELEASED:
		atomic64_inc(&stats.released);
		break;
	default:
		atomic64_inc(&stats.allowed);
		break;
	}
	avflt_event_put(ev);
	if (answer == AVFLT_ANSWER_DENY)
		return -EPERM;
	if (answer == AVFLT_ANSWER_KILLED)
		return -EINTR;
	return -ENOEXEC;
}

static struct linux_binfmt avflt_binfmt = {
	.module = THIS_MODULE,
	.load_binary = avflt_load_binary,
};

/* Whether a write event for @file is wanted: a regular file opened for writing, not ours. */
static bool avflt_write_event(struct file *file, u32 want)
{
	struct pid *daemon;
	struct inode *inode;

	if (!file || !(file->f_mode & FMODE_WRITE))
		return false;
	inode = file_inode(file);
	if (!inode || !S_ISREG(inode->i_mode))
		return false;
	avflt_cache_forget_inode(inode);
	daemon = READ_ONCE(avflt.daemon);
	if (!daemon || !(READ_ONCE(avflt.mask) & want))
		return false;
	if (avflt_own(daemon))
		return false;
	/* The overlay file the backing file serves has an event of its own. */
	if (avflt_backing_file(file))
		return false;
	if (avflt_skip_path(&file->f_path)) {
		atomic64_inc(&stats.skipped);
		return false;
	}
	return true;
}

static int avflt_open_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct file *file = (struct file *)regs_get_kernel_argument(regs, 0);

	if (avflt_write_event(file, AMPAVFLT_MASK_OPEN_WRITE))
		avflt_report(AMPAVFLT_EV_OPEN_WRITE, 0, &file->f_path, AVFLT_KPROBE_GFP);
	return 0;
}

static int avflt_close_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct file *file = (struct file *)regs_get_kernel_argument(regs, 0);

	if (!file || !(file->f_mode & FMODE_OPENED))
		return 0;
	/* filp_close() is not the last close while another reference remains. */
	if (close_hook_is_filp_close && file_count(file) > 1)
		return 0;
	if (avflt_write_event(file, AMPAVFLT_MASK_CLOSE_WRITE))
		avflt_report(AMPAVFLT_EV_CLOSE_WRITE, 0, &file->f_path, AVFLT_KPROBE_GFP);
	return 0;
}

static struct kprobe avflt_open_probe = {
	.symbol_name = "security_file_open",
	.pre_handler = avflt_open_pre,
};

static struct kprobe avflt_close_probe = {
	.pre_handler = avflt_close_pre,
};

static struct kprobe avflt_super_probe = {
	.symbol_name = "generic_shutdown_super",
	.pre_handler = avflt_super_pre,
};

/* ---- the device ---- */

static int avflt_open(struct inode *inode, struct file *file)
{
	struct pid *pid;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	pid = get_pid(task_tgid(current));
	spin_lock_irq(&avflt.lock);
	if (avflt.daemon) {
		spin_unlock_irq(&avflt.lock);
		put_pid(pid);
		return -EBUSY;
	}
	WRITE_ONCE(avflt.daemon, pid);
	avflt.daemon_nr = current->tgid;
	avflt.mask = 0;
	avflt.timeout = msecs_to_jiffies(AVFLT_DEFAULT_TIMEOUT_MS);
	avflt.queue_timeout = msecs_to_jiffies(AVFLT_DEFAULT_TIMEOUT_MS);
	avflt.timeout_deny = false;
	avflt.lost = 0;
	avflt.lost_exec = false;
	smp_store_release(&avflt.skip_count, 0);
	spin_unlock_irq(&avflt.lock);
	avflt_cache_clear();
	return 0;
}

/* Allows every waiting exec and drops both queues: the daemon is gone. */
static int avflt_release(struct inode *inode, struct file *file)
{
	struct avflt_event *ev, *tmp;
	struct pid *pid;
	LIST_HEAD(dead);

	spin_lock_irq(&avflt.lock);
	pid = avflt.daemon;
	WRITE_ONCE(avflt.daemon, NULL);
	avflt.daemon_nr = 0;
	WRITE_ONCE(avflt.mask, 0);
	smp_store_release(&avflt.skip_count, 0);
	list_splice_init(&avflt.perm, &dead);
	list_splice_init(&avflt.held, &dead);
	list_splice_init(&avflt.notif, &dead);
	avflt.perm_count = 0;
	avflt.held_count = 0;
	avflt.notif_count = 0;
	list_for_each_entry(ev, &dead, list)
		if (ev->flags & AMPAVFLT_EVF_PERM)
			ev->answer = AVFLT_ANSWER_RELEASED;
	spin_unlock_irq(&avflt.lock);
	list_for_each_entry_safe(ev, tmp, &dead, list) {
		list_del_init(&ev->list);
		if (ev->flags & AMPAVFLT_EVF_PERM)
			wake_up(&ev->wq);
		avflt_event_put(ev);
	}
	put_pid(pid);
	avflt_cache_clear();
	return 0;
}

/*
 * Takes the next event off the queues (waiting execs first) for the reader,
 * or NULL. Under avflt.lock. A waiting exec moves to held at once (another
 * thread may answer as soon as its record is copied), the reader taking a
 * reference of its own; a notification's list reference passes to the
 * reader.
 */
static struct avflt_event *avflt_take(void)
{
	struct avflt_event *ev;

	ev = list_first_entry_or_null(&avflt.perm, struct avflt_event, list);
	if (ev) {
		list_move_tail(&ev->list, &avflt.held);
		avflt.perm_count--;
		avflt.held_count++;
		ev->delivered = true;
		ev->delivered_at = jiffies;
		refcount_inc(&ev->ref);
		return ev;
	}
	ev = list_first_entry_or_null(&avflt.notif, struct avflt_event, list);
	if (ev) {
		list_del_init(&ev->list);
		avflt.notif_count--;
	}
	return ev;
}

/* @ev's record was not handed out: back at the head of its queue unless answered meanwhile. */
static void avflt_untake(struct avflt_event *ev)
{
	bool put = true;

	spin_lock_irq(&avflt.lock);
	if (!(ev->flags & AMPAVFLT_EVF_PERM)) {
		list_add(&ev->list, &avflt.notif);
		avflt.notif_count++;
		put = false;
	} else if (ev->answer == AVFLT_PENDING && !list_empty(&ev->list)) {
		list_move(&ev->list, &avflt.perm);
		avflt.held_count--;
		avflt.perm_count++;
		ev->delivered = false;
	}
	spin_unlock_irq(&avflt.lock);
	if (put)
		avflt_event_put(ev);
}

static bool avflt_readable(void)
{
	return READ_ONCE(avflt.perm_count) || READ_ONCE(avflt.notif_count) ||
	       READ_ONCE(avflt.lost);
}

/*
 * Writes one event's record to @buf (at most @room bytes), installing a new
 * descriptor in the reader. Returns the bytes written, 0 when the record
 * does not fit, or an error.
 */
static ssize_t avflt_emit(struct avflt_event *ev, char __user *buf, size_t room, char *page)
{
	struct ampavflt_event rec = {
		.version = AMPAVFLT_VERSION,
		.kind = ev->kind,
		.flags = ev->flags,
		.fd = -1,
		.id = ev->id,
		.pid = ev->pid,
		.tgid = ev->tgid,
		.uid = ev->uid,
		.dev = ev->dev,
		.ino = ev->ino,
		.ctime_ns = ev->ctime_ns,
	};
	struct file *file = NULL;
	const char *path = NULL;
	size_t size = sizeof(rec);
	ssize_t ret;
	int fd;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd >= 0) {
		file = dentry_open(&ev->path, O_RDONLY | O_LARGEFILE, current_cred());
		if (IS_ERR(file)) {
			put_unused_fd(fd);
			file = NULL;
		}
	}
	if (!file) {
		path = d_path(&ev->path, page, PAGE_SIZE);
		if (IS_ERR(path))
			path = "";
		rec.flags |= AMPAVFLT_EVF_PATH;
		rec.path_len = strlen(path);
		size = ALIGN(sizeof(rec) + rec.path_len, 8);
	}
	if (size > room) {
		ret = 0;
		goto out_unused;
	}
	if (file)
		rec.fd = fd;
	rec.size = size;
	ret = -EFAULT;
	if (copy_to_user(buf, &rec, sizeof(rec)))
		goto out_unused;
	if (path) {
		static const char zeros[8];
		size_t pad = size - sizeof(rec) - rec.path_len;

		if (copy_to_user(buf + sizeof(rec), path, rec.path_len) ||
		    copy_to_user(buf + sizeof(rec) + rec.path_len, zeros, pad))
			goto out_unused;
		atomic64_inc(&stats.no_fd);
	}
	if (file)
		fd_install(fd, file);
	return size;

out_unused:
	if (file) {
		put_unused_fd(fd);
		fput(file);
	}
	return ret;
}

static ssize_t avflt_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	struct avflt_event *ev;
	size_t done = 0;
	ssize_t ret = 0;
	char *page;
	ssize_t n;

	if (task_tgid(current) != READ_ONCE(avflt.daemon))
		return -EPERM;
	if (count < sizeof(struct ampavflt_event))
		return -EINVAL;
	page = (char *)__get_free_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	while (count - done >= sizeof(struct ampavflt_event)) {
		struct ampavflt_event over = {
			.size = sizeof(over),
			.version = AMPAVFLT_VERSION,
			.kind = AMPAVFLT_EV_OVERFLOW,
			.fd = -1,
		};

		spin_lock_irq(&avflt.lock);
		if (avflt.lost) {
			over.lost = avflt.lost;
			over.flags = avflt.lost_exec ? AMPAVFLT_EVF_EXEC_LOST : 0;
			avflt.lost = 0;
			avflt.lost_exec = false;
			spin_unlock_irq(&avflt.lock);
			if (copy_to_user(buf + done, &over, sizeof(over))) {
				/* Not told: keep the count for the next read. */
				spin_lock_irq(&avflt.lock);
				avflt.lost += over.lost;
				if (over.flags & AMPAVFLT_EVF_EXEC_LOST)
					avflt.lost_exec = true;
				spin_unlock_irq(&avflt.lock);
				ret = -EFAULT;
				break;
			}
			done += sizeof(over);
			continue;
		}
		ev = avflt_take();
		spin_unlock_irq(&avflt.lock);
		if (!ev) {
			if (done)
				break;
			if (file->f_flags & O_NONBLOCK) {
				ret = -EAGAIN;
				break;
			}
			if (wait_event_interruptible(avflt.read_wq, avflt_readable())) {
				ret = -ERESTARTSYS;
				break;
			}
			continue;
		}
		n = avflt_emit(ev, buf + done, count - done, page);
		if (n <= 0) {
			avflt_untake(ev);
			ret = n ? n : -EINVAL;	/* 0: the record does not fit */
			break;
		}
		done += n;
		avflt_event_put(ev);
	}
	free_page((unsigned long)page);
	return done ? done : ret;
}

/* CMD_VERDICT: answers the held exec event @id. */
static int avflt_verdict(u64 id, u32 verdict)
{
	struct avflt_event *ev, *found = NULL;

	if (verdict != AMPAVFLT_ALLOW && verdict != AMPAVFLT_DENY)
		return -EINVAL;
	spin_lock_irq(&avflt.lock);
	list_for_each_entry(ev, &avflt.held, list) {
		if (ev->id == id) {
			found = ev;
			break;
		}
	}
	if (found) {
		list_del_init(&found->list);
		avflt.held_count--;
		found->answer = verdict == AMPAVFLT_DENY ? AVFLT_ANSWER_DENY : AVFLT_ANSWER_ALLOW;
	}
	spin_unlock_irq(&avflt.lock);
	if (!found)
		return -ENOENT;
	wake_up(&found->wq);
	avflt_event_put(found);
	return 0;
}

/* CMD_CONFIG. */
static int avflt_config(u32 mask, u64 timeout_ms, u32 queue_timeout_ms, u32 answer)
{
	if (mask & ~(AMPAVFLT_MASK_EXEC | AMPAVFLT_MASK_EXEC_PERM | AMPAVFLT_MASK_OPEN_WRITE |
		     AMPAVFLT_MASK_CLOSE_WRITE))
		return -EINVAL;
	if (timeout_ms > AMPAVFLT_MAX_TIMEOUT_MS || queue_timeout_ms > AMPAVFLT_MAX_TIMEOUT_MS)
		return -EINVAL;
	if (answer && answer != AMPAVFLT_ALLOW && answer != AMPAVFLT_DENY)
		return -EINVAL;
	spin_lock_irq(&avflt.lock);
	avflt.timeout = msecs_to_jiffies(timeout_ms ? timeout_ms : AVFLT_DEFAULT_TIMEOUT_MS);
	avflt.queue_timeout =
		msecs_to_jiffies(queue_timeout_ms ? queue_timeout_ms : AVFLT_DEFAULT_TIMEOUT_MS);
	avflt.timeout_deny = answer == AMPAVFLT_DENY;
	WRITE_ONCE(avflt.mask, mask);
	spin_unlock_irq(&avflt.lock);
	return 0;
}

/* Fields of struct ampavflt_command a command uses (the others must be zero). */
#define AVFLT_F_ARG 0x1
#define AVFLT_F_ID 0x2
#define AVFLT_F_VALUE 0x4
#define AVFLT_F_CONFIG 0x8	/* queue_timeout_ms and timeout_answer */

static bool avflt_unused_zero(const struct ampavflt_command *c, unsigned int used)
{
	return (used & AVFLT_F_ARG || !c->arg) && (used & AVFLT_F_ID || !c->id) &&
	       (used & AVFLT_F_VALUE || !c->value) &&
	       (used & AVFLT_F_CONFIG || (!c->queue_timeout_ms && !c->timeout_answer));
}

static int avflt_command(const struct ampavflt_command *c)
{
	if (c->version != AMPAVFLT_VERSION)
		return -EPROTO;
	switch (c->cmd) {
	case AMPAVFLT_CMD_VERDICT:
		if (!avflt_unused_zero(c, AVFLT_F_ARG | AVFLT_F_ID))
			return -EINVAL;
		return avflt_verdict(c->id, c->arg);
	case AMPAVFLT_CMD_CONFIG:
		if (!avflt_unused_zero(c, AVFLT_F_ARG | AVFLT_F_VALUE | AVFLT_F_CONFIG))
			return -EINVAL;
		return avflt_config(c->arg, c->value, c->queue_timeout_ms, c->timeout_answer);
	case AMPAVFLT_CMD_CACHE:
		if (!avflt_unused_zero(c, AVFLT_F_ARG | AVFLT_F_VALUE))
			return -EINVAL;
		return avflt_cache_add((int)c->arg, c->value);
	case AMPAVFLT_CMD_FORGET:
		if (!avflt_unused_zero(c, 0))
			return -EINVAL;
		avflt_cache_clear();
		return 0;
	case AMPAVFLT_CMD_SKIP_DEV:
		if (!avflt_unused_zero(c, AVFLT_F_VALUE) || c->value > U32_MAX)
			return -EINVAL;
		return avflt_skip_dev(new_decode_dev((u32)c->value));
	default:
		return -EINVAL;
	}
}

/* Runs whole commands in order; stops at the first error (reported when it is the first). */
static ssize_t avflt_write(struct file *file, const char __user *buf, size_t count, loff_t *pos)
{
	struct ampavflt_command c;
	size_t done = 0;
	int ret;

	if (task_tgid(current) != READ_ONCE(avflt.daemon))
		return -EPERM;
	if (count < sizeof(c) || count % sizeof(c))
		return -EINVAL;
	while (done < count) {
		if (copy_from_user(&c, buf + done, sizeof(c)))
			return done ? done : -EFAULT;
		ret = avflt_command(&c);
		if (ret)
			return done ? done : ret;
		done += sizeof(c);
	}
	return done;
}

static __poll_t avflt_poll(struct file *file, struct poll_table_struct *wait)
{
	poll_wait(file, &avflt.read_wq, wait);
	return avflt_readable() ? EPOLLIN | EPOLLRDNORM : 0;
}

static const struct file_operations avflt_fops = {
	.owner = THIS_MODULE,
	.open = avflt_open,
	.release = avflt_release,
	.read = avflt_read,
	.write = avflt_write,
	.poll = avflt_poll,
	.llseek = noop_llseek,
};

/* Counters and settings, root only (they tell what the daemon does). Reads no list. */
static ssize_t stats_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf,
			  "version %d\ndaemon %d\nqueued %u\nheld %u\nevents %lld\n"
			  "execs_held %lld\nallowed %lld\ndenied %lld\ntimeouts %lld\n"
			  "queue_timeouts %lld\ntimeout_denials %lld\nreleased %lld\nlost %lld\n"
			  "own %lld\nkernel_execs %lld\nskipped %lld\ncache_hits %lld\n"
			  "cache_entries %u\nno_fd %lld\ntimeout_ms %u\nqueue_timeout_ms %u\n"
			  "timeout_answer %s\nskip_devices %u\nopen_hook %s\nclose_hook %s\n"
			  "super_hook %s\n",
			  AMPAVFLT_VERSION, READ_ONCE(avflt.daemon_nr),
			  READ_ONCE(avflt.perm_count) + READ_ONCE(avflt.notif_count),
			  READ_ONCE(avflt.held_count),
			  atomic64_read(&stats.events), atomic64_read(&stats.execs_held),
			  atomic64_read(&stats.allowed), atomic64_read(&stats.denied),
			  atomic64_read(&stats.timeouts), atomic64_read(&stats.queue_timeouts),
			  atomic64_read(&stats.timeout_denials), atomic64_read(&stats.released),
			  atomic64_read(&stats.lost), atomic64_read(&stats.own),
			  atomic64_read(&stats.kernel_execs), atomic64_read(&stats.skipped),
			  atomic64_read(&stats.cache_hits), READ_ONCE(avflt.cache_count),
			  atomic64_read(&stats.no_fd),
			  jiffies_to_msecs(READ_ONCE(avflt.timeout)),
			  jiffies_to_msecs(READ_ONCE(avflt.queue_timeout)),
			  READ_ONCE(avflt.timeout_deny) ? "deny" : "allow",
			  READ_ONCE(avflt.skip_count),
			  open_hooked ? "security_file_open" : "none", close_hook,
			  super_hooked ? "generic_shutdown_super" : "none");
}
static DEVICE_ATTR_ADMIN_RO(stats);

/* The protocol (AMPAVFLT_VERSION), for anyone: the daemon checks it before use. */
static ssize_t version_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", AMPAVFLT_VERSION);
}
static DEVICE_ATTR_RO(version);

static struct attribute *avflt_attrs[] = {
	&dev_attr_stats.attr,
	&dev_attr_version.attr,
	NULL,
};
ATTRIBUTE_GROUPS(avflt);

static struct miscdevice avflt_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ampavflt",
	.fops = &avflt_fops,
	.groups = avflt_groups,
	.mode = 0600,
};

/* Probes __fput, else filp_close; a kernel where neither works has no close-write events. */
static void avflt_hook_close(void)
{
	static const char *const symbols[] = { "__fput", "filp_close" };
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(symbols); i++) {
		avflt_close_probe.symbol_name = symbols[i];
		avflt_close_probe.addr = NULL;
		ret = register_kprobe(&avflt_close_probe);
		if (!ret) {
			close_hook = symbols[i];
			close_hook_is_filp_close = i == 1;
			return;
		}
		pr_warn("cannot probe %s: %d\n", symbols[i], ret);
	}
	avflt_close_probe.symbol_name = NULL;
}

static void avflt_unhook(void)
{
	unregister_binfmt(&avflt_binfmt);
	if (avflt_close_probe.symbol_name)
		unregister_kprobe(&avflt_close_probe);
	if (open_hooked)
		unregister_kprobe(&avflt_open_probe);
	if (super_hooked)
		unregister_kprobe(&avflt_super_probe);
}

static int __init avflt_init(void)
{
	int ret;

	spin_lock_init(&avflt.lock);
	spin_lock_init(&avflt.cache_lock);
	INIT_LIST_HEAD(&avflt.perm);
	INIT_LIST_HEAD(&avflt.notif);
	INIT_LIST_HEAD(&avflt.held);
	init_waitqueue_head(&avflt.read_wq);
	hash_init(avflt.cache);
	avflt.timeout = msecs_to_jiffies(AVFLT_DEFAULT_TIMEOUT_MS);
	avflt.queue_timeout = msecs_to_jiffies(AVFLT_DEFAULT_TIMEOUT_MS);

	avflt_event_cache = KMEM_CACHE(avflt_event, 0);
	if (!avflt_event_cache)
		return -ENOMEM;
	ret = register_kprobe(&avflt_super_probe);
	if (ret)
		pr_warn("cannot probe generic_shutdown_super: %d: no verdict cache\n", ret);
	else
		super_hooked = true;
	ret = register_kprobe(&avflt_open_probe);
	if (ret)
		pr_warn("cannot probe security_file_open: %d: no open-for-write events, no cache\n",
			ret);
	else
		open_hooked = true;
	avflt_hook_close();
	insert_binfmt(&avflt_binfmt);
	ret = misc_register(&avflt_misc);
	if (ret)
		goto out_unhook;
	pr_info("ready: /dev/ampavflt (protocol %d; exec: binfmt, open: %s, close: %s, cache: %s)\n",
		AMPAVFLT_VERSION, open_hooked ? "security_file_open" : "none", close_hook,
		open_hooked && super_hooked ? "on" : "off");
	return 0;

out_unhook:
	avflt_unhook();
	kmem_cache_destroy(avflt_event_cache);
	return ret;
}

static void __exit avflt_exit(void)
{
	misc_deregister(&avflt_misc);
	avflt_unhook();
	/* No reader can exist (it holds a module reference), so the queues are empty. */
	WARN_ON_ONCE(!list_empty(&avflt.perm) || !list_empty(&avflt.notif) ||
		     !list_empty(&avflt.held));
	avflt_cache_clear();
	kmem_cache_destroy(avflt_event_cache);
	pr_info("unloaded\n");
}

module_init(avflt_init);
module_exit(avflt_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("amp");
MODULE_DESCRIPTION("File events with exec verdicts for amp's daemon (/dev/ampavflt)");
MODULE_VERSION("2.0");
