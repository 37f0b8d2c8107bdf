// SPDX-License-Identifier: MIT
// Streaming benchmark: one Java producer -> taktd -> a C consumer (tests/peers/peer_c).
//
//   java -cp takt-peer.jar tools/java/bench/JavaBench.java SOCKET CHANNEL COUNT SIZE [BATCH]
//
// The channel must exist and peer_c must consume it ("peer_c consume CHANNEL COUNT
// --min SIZE --max SIZE"); the records use the test layout (sequence number, pattern,
// CRC-32), are built before the clock starts, and are sent with sendBatch.  Prints
//   java-bench: records=N size=S seconds=T rate=R/s
import io.takt.peer.Producer;
import io.takt.peer.TaktClient;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.zip.CRC32;

public class JavaBench {
    static byte[] record(long seq, int len) {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(seq);
        for (int i = 8; i < len - 4; i++)
            b.put((byte) (i + seq));
        CRC32 c = new CRC32();
        c.update(b.array(), 0, len - 4);
        b.putInt((int) c.getValue());
        return b.array();
    }

    public static void main(String[] a) throws Exception {
        String sock = a[0], chan = a[1];
        int count = Integer.parseInt(a[2]), size = Integer.parseInt(a[3]);
        int batch = a.length > 4 ? Integer.parseInt(a[4]) : 4096;
        byte[][] recs = new byte[count][];
        int[] types = new int[count];
        for (int i = 0; i < count; i++) {
            recs[i] = record(i + 1, size);
            types[i] = (i + 1) & 0xffffff;
        }
        try (TaktClient c = TaktClient.connect(Paths.get(sock)); Producer p = c.openProducer(chan)) {
            long t0 = System.nanoTime();
            for (int i = 0; i < count; i += batch) {
                int n = Math.min(batch, count - i);
                byte[][] r = new byte[n][];
                int[] t = new int[n];
                System.arraycopy(recs, i, r, 0, n);
                System.arraycopy(types, i, t, 0, n);
                p.sendBatch(r, t, 0, null);
            }
            p.flush(Duration.ofSeconds(60));
            double dt = (System.nanoTime() - t0) / 1e9;
            System.out.printf("java-bench: records=%d size=%d seconds=%.3f rate=%.0f/s%n", count, size, dt, count / dt);
        }
    }
}
