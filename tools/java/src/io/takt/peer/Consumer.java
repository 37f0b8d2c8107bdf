// SPDX-License-Identifier: MIT
package io.takt.peer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A consuming attachment (docs/PROTOCOL.md §6).  {@link #receive(Duration)} returns
 * the next record or null at the timeout.  Records received before a connection
 * error are returned before the error is thrown.  Thread-safe.
 */
public final class Consumer implements AutoCloseable {
    private final TaktClient client;
    private final TaktClient.Attachment att;

    Consumer(TaktClient client, TaktClient.Attachment att) {
        this.client = client;
        this.att = att;
    }

    public String channel() { return att.name; }
    public ChannelInfo info() { return att.info; }

    /** Records taktd discarded for this client (drop-oldest policy). */
    public long dropped() {
        client.lock.lock();
        try { return att.dropped; } finally { client.lock.unlock(); }
    }

    /** The next record, waiting without limit. */
    public TaktRecord receive() throws TaktException {
        return receive(null);
    }

    /** The next record, or null when none came within timeout (null: no limit). */
    public TaktRecord receive(Duration timeout) throws TaktException {
        List<TaktRecord> l = receiveMany(1, timeout);
        return l.isEmpty() ? null : l.get(0);
    }

    /** Up to max records received so far, waiting up to timeout for the first; empty at the timeout. */
    public List<TaktRecord> receiveMany(int max, Duration timeout) throws TaktException {
        long dl = timeout == null ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
        client.lock.lock();
        try {
            while (att.queue.isEmpty()) {
                if (att.detached)
                    throw new TaktException.Closed("consumer of " + att.name + " is closed");
                client.check();
                long rem = dl == Long.MAX_VALUE ? Long.MAX_VALUE : dl - System.nanoTime();
                if (rem <= 0)
                    return List.of();
                try {
                    if (rem == Long.MAX_VALUE)
                        client.changed.await();
                    else
                        client.changed.awaitNanos(rem);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return List.of();
                }
            }
            int n = Math.min(max, att.queue.size());
            List<TaktRecord> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++)
                out.add(att.queue.pollFirst());
            return out;
        } finally {
            client.lock.unlock();
        }
    }

    /** DETACH; returns {delivered, dropped} as taktd reported them (null if the connection is gone). */
    public long[] detach() throws TaktException {
        return client.detach(att, client.requestTimeout);
    }

    @Override
    public void close() throws TaktException {
        if (!att.detached)
            detach();
    }
}
