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
 *   kprobe handlers run with preemption off: they only allocate
 *   (GFP_ATOMIC), take a path reference and queue; every descriptor is
 *   made later, in read(), in the daemon's context.
 * Kernels: built without warnings and run (tests/kmod_vm_test.ts) on
 * Debian 12's 6.1 (x86_64). The hooks themselves exist from 2.6 on; the
 * helpers used here set the floor at 5.10 (sysfs_emit; also
 * regs_get_kernel_argument 5.0, FMODE_OPENED 4.19, __poll_t 4.16), and
 * inode_get_ctime() is used from 6.6 on. A build for an older kernel (RHEL
 * 6/7 era) needs small compatibility shims for those, not another design.
 *
 * Queues and lifetimes: all under avflt.lock (a spinlock; kprobe context).
 *  - perm: exec events waiting to be read (unbounded: each holds a blocked
 *    process); notif: other events, bounded by AVFLT_MAX_NOTIF (beyond it
 *    they are counted in `lost` and an OVERFLOW record is read first);
 *    held: exec events read and not answered yet.
 *  - An event is refcounted: one reference for the list it is on (or the
 *    reader that took it off), one for the exec waiting on it. The last
 *    put drops its path reference, which may sleep: puts happen only in
 *    process context (read, write, release, the exec), never in a kprobe.
 *  - An exec waits killably up to the timeout (CONFIG value, default
 *    AVFLT_DEFAULT_TIMEOUT_MS): then it is allowed and counted. A verdict
 *    for an event that timed out gets ENOENT.
 *  - The daemon is whoever opened the device (one at a time, CAP_SYS_ADMIN).
 *    Events of its thread group are never queued; execs of its direct
 *    children are reported without being held (the daemon may be waiting
 *    for that very exec to complete). When the device is released, every
 *    exec waiting is allowed, both queues are dropped and the cache emptied.
 *  - Verdict cache (avflt.cache_lock): (dev, ino) -> ctime, size of files
 *    the daemon found clean (CMD_CACHE). An exec of a cached, unchanged
 *    file with no writer is allowed without an event. Entries are added
 *    only while the file has no writer and removed when a writer opens it
 *    (the open hook runs after get_write_access(), so a writer is either
 *    seen by the CACHE check or removes the entry after it).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/binfmts.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/kdev_t.h>
#include <linux/kprobes.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/path.h>
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

#define AVFLT_MAX_NOTIF 16384
#define AVFLT_DEFAULT_TIMEOUT_MS 5000
#define AVFLT_MAX_TIMEOUT_MS 600000
#define AVFLT_MAX_CACHE 65536
#define AVFLT_CACHE_BITS 12

/* Answers of an exec event (avflt_event.answer). */
enum avflt_answer {
	AVFLT_PENDING = 0,
	AVFLT_ANSWER_ALLOW,
	AVFLT_ANSWER_DENY,
	AVFLT_ANSWER_TIMEOUT,	/* allowed */
	AVFLT_ANSWER_RELEASED,	/* allowed: the daemon closed the device */
	AVFLT_ANSWER_KILLED,	/* the waiting process got a fatal signal */
};

struct avflt_event {
	struct list_head list;	/* perm, notif or held; empty when off them */
	refcount_t ref;
	u64 id;
	u16 kind;
	u32 flags;
	pid_t pid;
	pid_t tgid;
	u32 uid;
	struct path path;
	u64 dev;
	u64 ino;
	u64 ctime_ns;
	int answer;		/* enum avflt_answer; under avflt.lock */
};

struct avflt_cache_entry {
	struct hlist_node node;
	u64 dev;
	u64 ino;
	u64 ctime_ns;
	loff_t size;
};

static struct {
	spinlock_t lock;
	struct list_head perm;
	struct list_head notif;
	struct list_head held;
	unsigned int notif_count;
	u64 lost;		/* since the last OVERFLOW record */
	bool lost_exec;
	u64 next_id;
	pid_t daemon;		/* tgid of the reader; 0: none (READ_ONCE in hooks) */
	u32 mask;		/* AMPAVFLT_MASK_* (READ_ONCE in hooks) */
	unsigned long timeout;	/* jiffies */
	wait_queue_head_t read_wq;
	wait_queue_head_t answer_wq;

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
	atomic64_t released;
	atomic64_t lost;
	atomic64_t own;
	atomic64_t cache_hits;
	atomic64_t no_fd;
} stats;

static struct kmem_cache *avflt_event_cache;
static bool open_hooked;
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
static bool avflt_own(pid_t daemon)
{
	if (current->tgid != daemon)
		return false;
	atomic64_inc(&stats.own);
	return true;
}

/* A new event for @path (no path reference yet: see avflt_queue()). */
static struct avflt_event *avflt_event_new(u16 kind, const struct path *path, gfp_t gfp)
{
	struct inode *inode = d_inode(path->dentry);
	struct avflt_event *ev = kmem_cache_zalloc(avflt_event_cache, gfp);

	if (!ev)
		return NULL;
	INIT_LIST_HEAD(&ev->list);
	refcount_set(&ev->ref, 1);
	ev->kind = kind;
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

/*
 * Queues @ev (its list reference) when a daemon is registered, taking the
 * path reference under the lock. Returns false when nobody listens or the
 * notification queue is full: @ev then holds no path reference and the
 * caller frees it with kmem_cache_free().
 */
static bool avflt_queue(struct avflt_event *ev)
{
	unsigned long flags;

	spin_lock_irqsave(&avflt.lock, flags);
	if (!avflt.daemon) {
		spin_unlock_irqrestore(&avflt.lock, flags);
		return false;
	}
	if (ev->flags & AMPAVFLT_EVF_PERM) {
		list_add_tail(&ev->list, &avflt.perm);
	} else if (avflt.notif_count >= AVFLT_MAX_NOTIF) {
		avflt.lost++;
		if (ev->kind == AMPAVFLT_EV_EXEC)
			avflt.lost_exec = true;
		spin_unlock_irqrestore(&avflt.lock, flags);
		atomic64_inc(&stats.lost);
		wake_up_interruptible(&avflt.read_wq);
		return false;
	} else {
		list_add_tail(&ev->list, &avflt.notif);
		avflt.notif_count++;
	}
	ev->id = ++avflt.next_id;
	path_get(&ev->path);
	spin_unlock_irqrestore(&avflt.lock, flags);
	atomic64_inc(&stats.events);
	wake_up_interruptible(&avflt.read_wq);
	return true;
}

/* A notification from a kprobe handler (atomic context). */
static void avflt_notify(u16 kind, const struct path *path)
{
	struct avflt_event *ev = avflt_event_new(kind, path, GFP_ATOMIC);

	if (!ev) {
		atomic64_inc(&stats.lost);
		return;
	}
	if (!avflt_queue(ev))
		kmem_cache_free(avflt_event_cache, ev);
}

/* ---- verdict cache ---- */

/* The hash key of a file (hash_add() and hash_for_each_possible() hash it again). */
static u64 avflt_cache_key(u64 dev, u64 ino)
{
	return (dev << 48) ^ ino;
}

static struct avflt_cache_entry *avflt_cache_find(u64 dev, u64 ino)
{
	struct avflt_cache_entry *e;

	hash_for_each_possible(avflt.cache, e, node, avflt_cache_key(dev, ino))
		if (e->dev == dev && e->ino == ino)
			return e;
	return NULL;
}

/* The file was found clean and is unchanged since, with no writer. */
static bool avflt_cache_hit(struct inode *inode)
{
	u64 dev = new_encode_dev(inode->i_sb->s_dev);
	struct avflt_cache_entry *e;
	unsigned long flags;
	bool hit = false;

	if (!READ_ONCE(avflt.cache_count))
		return false;
	spin_lock_irqsave(&avflt.cache_lock, flags);
	e = avflt_cache_find(dev, inode->i_ino);
	if (e && e->ctime_ns == inode_ctime_ns(inode) && e->size == i_size_read(inode) &&
	    atomic_read(&inode->i_writecount) <= 0)
		hit = true;
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	if (hit)
		atomic64_inc(&stats.cache_hits);
	return hit;
}

/* A writer opened or closed the file: its cached verdict no longer holds. */
static void avflt_cache_forget_inode(struct inode *inode)
{
	struct avflt_cache_entry *e;
	unsigned long flags;

	if (!READ_ONCE(avflt.cache_count))
		return;
	spin_lock_irqsave(&avflt.cache_lock, flags);
	e = avflt_cache_find(new_encode_dev(inode->i_sb->s_dev), inode->i_ino);
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
	u64 dev;

	file = fget(fd);
	if (!file)
		return -EBADF;
	inode = file_inode(file);
	if (!S_ISREG(inode->i_mode)) {
		ret = -EINVAL;
		goto out_fput;
	}
	fresh = kmalloc(sizeof(*fresh), GFP_KERNEL);
	if (!fresh) {
		ret = -ENOMEM;
		goto out_fput;
	}
	dev = new_encode_dev(inode->i_sb->s_dev);
	spin_lock_irqsave(&avflt.cache_lock, flags);
	if (inode_ctime_ns(inode) != ctime_ns) {
		ret = -ESTALE;		/* changed since the event that was scanned */
	} else if (atomic_read(&inode->i_writecount) > 0) {
		ret = -ETXTBSY;		/* a writer could change it unseen */
	} else {
		e = avflt_cache_find(dev, inode->i_ino);
		if (e) {
			e->ctime_ns = ctime_ns;
			e->size = i_size_read(inode);
		} else if (avflt.cache_count >= AVFLT_MAX_CACHE) {
			ret = -ENOSPC;
		} else {
			fresh->dev = dev;
			fresh->ino = inode->i_ino;
			fresh->ctime_ns = ctime_ns;
			fresh->size = i_size_read(inode);
			hash_add(avflt.cache, &fresh->node, avflt_cache_key(dev, inode->i_ino));
			avflt.cache_count++;
			fresh = NULL;
		}
	}
	spin_unlock_irqrestore(&avflt.cache_lock, flags);
	kfree(fresh);
out_fput:
	fput(file);
	return ret;
}

/* ---- hooks ---- */

static int avflt_load_binary(struct linux_binprm *bprm)
{
	pid_t daemon = READ_ONCE(avflt.daemon);
	u32 mask = READ_ONCE(avflt.mask);
	struct avflt_event *ev;
	bool child;
	long left;
	int answer;

	if (!daemon || !(mask & (AMPAVFLT_MASK_EXEC | AMPAVFLT_MASK_EXEC_PERM)))
		return -ENOEXEC;
	if (avflt_own(daemon))
		return -ENOEXEC;
	if (avflt_cache_hit(file_inode(bprm->file)))
		return -ENOEXEC;
	ev = avflt_event_new(AMPAVFLT_EV_EXEC, &bprm->file->f_path, GFP_KERNEL);
	if (!ev) {
		atomic64_inc(&stats.lost);
		return -ENOEXEC;
	}
	rcu_read_lock();
	child = rcu_dereference(current->real_parent)->tgid == daemon;
	rcu_read_unlock();
	if (!(mask & AMPAVFLT_MASK_EXEC_PERM) || child) {
		if (!avflt_queue(ev))
			kmem_cache_free(avflt_event_cache, ev);
		return -ENOEXEC;
	}
	ev->flags = AMPAVFLT_EVF_PERM;
	refcount_inc(&ev->ref);		/* ours, while we wait */
	if (!avflt_queue(ev)) {
		/* Nobody listens any more. */
		kmem_cache_free(avflt_event_cache, ev);
		return -ENOEXEC;
	}
	atomic64_inc(&stats.execs_held);
	left = wait_event_killable_timeout(avflt.answer_wq,
					   READ_ONCE(ev->answer) != AVFLT_PENDING,
					   READ_ONCE(avflt.timeout));
	spin_lock_irq(&avflt.lock);
	if (ev->answer == AVFLT_PENDING) {
		ev->answer = left < 0 ? AVFLT_ANSWER_KILLED : AVFLT_ANSWER_TIMEOUT;
		if (!list_empty(&ev->list)) {
			/* Still queued or held: the list's reference is not the last (ours is left). */
			list_del_init(&ev->list);
			refcount_dec(&ev->ref);
		}
	}
	answer = ev->answer;
	spin_unlock_irq(&avflt.lock);
	avflt_event_put(ev);

	switch (answer) {
	case AVFLT_ANSWER_DENY:
		atomic64_inc(&stats.denied);
		return -EPERM;
	case AVFLT_ANSWER_KILLED:
		return -EINTR;
	case AVFLT_ANSWER_TIMEOUT:
		atomic64_inc(&stats.timeouts);
		pr_info_ratelimited("exec of pid %d allowed: no verdict within %u ms\n",
				    current->pid, jiffies_to_msecs(READ_ONCE(avflt.timeout)));
		break;
	case AVFLT_ANSWER_RELEASED:
		atomic64_inc(&stats.released);
		break;
	default:
		atomic64_inc(&stats.allowed);
		break;
	}
	return -ENOEXEC;
}

static struct linux_binfmt avflt_binfmt = {
	.module = THIS_MODULE,
	.load_binary = avflt_load_binary,
};

/* Whether a write event for @file is wanted: a regular file opened for writing, not ours. */
static bool avflt_write_event(struct file *file, u32 want)
{
	pid_t daemon = READ_ONCE(avflt.daemon);
	struct inode *inode;

	if (!file || !(file->f_mode & FMODE_WRITE))
		return false;
	inode = file_inode(file);
	if (!inode || !S_ISREG(inode->i_mode))
		return false;
	avflt_cache_forget_inode(inode);
	if (!daemon || !(READ_ONCE(avflt.mask) & want))
		return false;
	return !avflt_own(daemon);
}

static int avflt_open_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct file *file = (struct file *)regs_get_kernel_argument(regs, 0);

	if (avflt_write_event(file, AMPAVFLT_MASK_OPEN_WRITE))
		avflt_notify(AMPAVFLT_EV_OPEN_WRITE, &file->f_path);
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
		avflt_notify(AMPAVFLT_EV_CLOSE_WRITE, &file->f_path);
	return 0;
}

static struct kprobe avflt_open_probe = {
	.symbol_name = "security_file_open",
	.pre_handler = avflt_open_pre,
};

static struct kprobe avflt_close_probe = {
	.pre_handler = avflt_close_pre,
};

/* ---- the device ---- */

static int avflt_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	spin_lock_irq(&avflt.lock);
	if (avflt.daemon) {
		spin_unlock_irq(&avflt.lock);
		return -EBUSY;
	}
	avflt.daemon = current->tgid;
	avflt.mask = 0;
	avflt.timeout = msecs_to_jiffies(AVFLT_DEFAULT_TIMEOUT_MS);
	avflt.lost = 0;
	avflt.lost_exec = false;
	spin_unlock_irq(&avflt.lock);
	avflt_cache_clear();
	return 0;
}

/* Allows every waiting exec and drops both queues: the daemon is gone. */
static int avflt_release(struct inode *inode, struct file *file)
{
	struct avflt_event *ev, *tmp;
	LIST_HEAD(dead);

	spin_lock_irq(&avflt.lock);
	avflt.daemon = 0;
	avflt.mask = 0;
	list_splice_init(&avflt.perm, &dead);
	list_splice_init(&avflt.held, &dead);
	list_splice_init(&avflt.notif, &dead);
	avflt.notif_count = 0;
	list_for_each_entry(ev, &dead, list)
		if (ev->flags & AMPAVFLT_EVF_PERM)
			ev->answer = AVFLT_ANSWER_RELEASED;
	spin_unlock_irq(&avflt.lock);
	wake_up_all(&avflt.answer_wq);
	list_for_each_entry_safe(ev, tmp, &dead, list) {
		list_del_init(&ev->list);
		avflt_event_put(ev);
	}
	avflt_cache_clear();
	return 0;
}

/* Puts a taken event back at the head of its queue (it did not fit), or drops it. */
static void avflt_requeue(struct avflt_event *ev)
{
	bool drop = false;

	spin_lock_irq(&avflt.lock);
	if (!avflt.daemon || ev->answer != AVFLT_PENDING) {
		drop = true;
	} else if (ev->flags & AMPAVFLT_EVF_PERM) {
		list_add(&ev->list, &avflt.perm);
	} else {
		list_add(&ev->list, &avflt.notif);
		avflt.notif_count++;
	}
	spin_unlock_irq(&avflt.lock);
	if (drop)
		avflt_event_put(ev);
}

/* An exec event was handed to the daemon: keep it until its verdict. */
static void avflt_hold(struct avflt_event *ev)
{
	bool drop = false;

	spin_lock_irq(&avflt.lock);
	if (ev->answer != AVFLT_PENDING)
		drop = true;	/* timed out or killed while being read */
	else
		list_add_tail(&ev->list, &avflt.held);
	spin_unlock_irq(&avflt.lock);
	if (drop)
		avflt_event_put(ev);
}

/* Takes the next event off the queues (perm first), or NULL. Under avflt.lock. */
static struct avflt_event *avflt_take(void)
{
	struct avflt_event *ev;

	ev = list_first_entry_or_null(&avflt.perm, struct avflt_event, list);
	if (!ev) {
		ev = list_first_entry_or_null(&avflt.notif, struct avflt_event, list);
		if (ev)
			avflt.notif_count--;
	}
	if (ev)
		list_del_init(&ev->list);
	return ev;
}

static bool avflt_readable(void)
{
	bool ready;

	spin_lock_irq(&avflt.lock);
	ready = !list_empty(&avflt.perm) || !list_empty(&avflt.notif) || avflt.lost;
	spin_unlock_irq(&avflt.lock);
	return ready;
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
			fd = -1;
		}
	}
	if (fd < 0) {
		path = d_path(&ev->path, page, PAGE_SIZE);
		if (IS_ERR(path))
			path = "";
		rec.flags |= AMPAVFLT_EVF_PATH;
		rec.path_len = strlen(path);
		size = ALIGN(sizeof(rec) + rec.path_len, 8);
		atomic64_inc(&stats.no_fd);
	}
	if (size > room) {
		ret = 0;
		goto out_unused;
	}
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
	char *page;
	ssize_t n;

	if (count < sizeof(struct ampavflt_event))
		return -EINVAL;
	page = (char *)__get_free_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	for (;;) {
		struct ampavflt_event over = {
			.size = sizeof(over),
			.version = AMPAVFLT_VERSION,
			.kind = AMPAVFLT_EV_OVERFLOW,
			.fd = -1,
		};

		if (count - done < sizeof(struct ampavflt_event))
			break;
		spin_lock_irq(&avflt.lock);
		if (avflt.lost) {
			over.lost = avflt.lost;
			over.flags = avflt.lost_exec ? AMPAVFLT_EVF_EXEC_LOST : 0;
			avflt.lost = 0;
			avflt.lost_exec = false;
			spin_unlock_irq(&avflt.lock);
			if (copy_to_user(buf + done, &over, sizeof(over))) {
				n = -EFAULT;
				goto out;
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
				n = -EAGAIN;
				goto out;
			}
			if (wait_event_interruptible(avflt.read_wq, avflt_readable())) {
				n = -ERESTARTSYS;
				goto out;
			}
			continue;
		}
		n = avflt_emit(ev, buf + done, count - done, page);
		if (n <= 0) {
			avflt_requeue(ev);
			if (n < 0 && !done)
				goto out;
			break;
		}
		done += n;
		if (ev->flags & AMPAVFLT_EVF_PERM)
			avflt_hold(ev);
		else
			avflt_event_put(ev);
	}
	n = done;
out:
	free_page((unsigned long)page);
	return n;
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
		found->answer = verdict == AMPAVFLT_DENY ? AVFLT_ANSWER_DENY : AVFLT_ANSWER_ALLOW;
	}
	spin_unlock_irq(&avflt.lock);
	if (!found)
		return -ENOENT;
	wake_up_all(&avflt.answer_wq);
	avflt_event_put(found);
	return 0;
}

static int avflt_command(const struct ampavflt_command *c)
{
	if (c->version != AMPAVFLT_VERSION)
		return -EPROTO;
	switch (c->cmd) {
	case AMPAVFLT_CMD_VERDICT:
		return avflt_verdict(c->id, c->arg);
	case AMPAVFLT_CMD_CONFIG:
		if (c->arg & ~(AMPAVFLT_MASK_EXEC | AMPAVFLT_MASK_EXEC_PERM |
			       AMPAVFLT_MASK_OPEN_WRITE | AMPAVFLT_MASK_CLOSE_WRITE))
			return -EINVAL;
		if (c->value > AVFLT_MAX_TIMEOUT_MS)
			return -EINVAL;
		WRITE_ONCE(avflt.timeout,
			   msecs_to_jiffies(c->value ? c->value : AVFLT_DEFAULT_TIMEOUT_MS));
		WRITE_ONCE(avflt.mask, c->arg);
		return 0;
	case AMPAVFLT_CMD_CACHE:
		return avflt_cache_add((int)c->arg, c->value);
	case AMPAVFLT_CMD_FORGET:
		avflt_cache_clear();
		return 0;
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

static ssize_t stats_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	unsigned int queued, held = 0;
	struct avflt_event *ev;
	pid_t daemon;

	spin_lock_irq(&avflt.lock);
	daemon = avflt.daemon;
	queued = avflt.notif_count;
	list_for_each_entry(ev, &avflt.perm, list)
		queued++;
	list_for_each_entry(ev, &avflt.held, list)
		held++;
	spin_unlock_irq(&avflt.lock);
	return sysfs_emit(buf,
			  "version %d\ndaemon %d\nqueued %u\nheld %u\nevents %lld\n"
			  "execs_held %lld\nallowed %lld\ndenied %lld\ntimeouts %lld\n"
			  "released %lld\nlost %lld\nown %lld\ncache_hits %lld\n"
			  "cache_entries %u\nno_fd %lld\nopen_hook %s\nclose_hook %s\n",
			  AMPAVFLT_VERSION, daemon, queued, held,
			  atomic64_read(&stats.events), atomic64_read(&stats.execs_held),
			  atomic64_read(&stats.allowed), atomic64_read(&stats.denied),
			  atomic64_read(&stats.timeouts), atomic64_read(&stats.released),
			  atomic64_read(&stats.lost), atomic64_read(&stats.own),
			  atomic64_read(&stats.cache_hits), READ_ONCE(avflt.cache_count),
			  atomic64_read(&stats.no_fd),
			  open_hooked ? "security_file_open" : "none", close_hook);
}
static DEVICE_ATTR_RO(stats);

static struct attribute *avflt_attrs[] = {
	&dev_attr_stats.attr,
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

static int __init avflt_init(void)
{
	int ret;

	spin_lock_init(&avflt.lock);
	spin_lock_init(&avflt.cache_lock);
	INIT_LIST_HEAD(&avflt.perm);
	INIT_LIST_HEAD(&avflt.notif);
	INIT_LIST_HEAD(&avflt.held);
	init_waitqueue_head(&avflt.read_wq);
	init_waitqueue_head(&avflt.answer_wq);
	hash_init(avflt.cache);
	avflt.timeout = msecs_to_jiffies(AVFLT_DEFAULT_TIMEOUT_MS);

	avflt_event_cache = KMEM_CACHE(avflt_event, 0);
	if (!avflt_event_cache)
		return -ENOMEM;
	ret = register_kprobe(&avflt_open_probe);
	if (ret)
		pr_warn("cannot probe security_file_open: %d: no open-for-write events\n", ret);
	else
		open_hooked = true;
	avflt_hook_close();
	insert_binfmt(&avflt_binfmt);
	ret = misc_register(&avflt_misc);
	if (ret)
		goto out_unhook;
	pr_info("ready: /dev/ampavflt (protocol %d; exec: binfmt, open: %s, close: %s)\n",
		AMPAVFLT_VERSION, open_hooked ? "security_file_open" : "none", close_hook);
	return 0;

out_unhook:
	unregister_binfmt(&avflt_binfmt);
	if (avflt_close_probe.symbol_name)
		unregister_kprobe(&avflt_close_probe);
	if (open_hooked)
		unregister_kprobe(&avflt_open_probe);
	kmem_cache_destroy(avflt_event_cache);
	return ret;
}

static void __exit avflt_exit(void)
{
	misc_deregister(&avflt_misc);
	unregister_binfmt(&avflt_binfmt);
	if (avflt_close_probe.symbol_name)
		unregister_kprobe(&avflt_close_probe);
	if (open_hooked)
		unregister_kprobe(&avflt_open_probe);
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
MODULE_VERSION("1.0");
