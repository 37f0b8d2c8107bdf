// SPDX-License-Identifier: MIT
// Produce records into a takt channel through taktd; a C process (e.g. `takt recv`)
// consumes them from shared memory.
//
//   java -cp build/tools/java/takt-peer.jar tools/java/examples/Produce.java \
//        [--socket PATH] [--create] [--count N] [--type T] CHANNEL [TEXT]
//
// Sends N records (default 10) "TEXT 1", "TEXT 2", ... (TEXT defaults to "hello from
// Java"), then waits until taktd acknowledged every one as committed to the ring.
import io.takt.peer.AttachOptions;
import io.takt.peer.Producer;
import io.takt.peer.TaktClient;
import io.takt.peer.TaktException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

public class Produce {
    public static void main(String[] args) {
        Path socket = TaktClient.defaultSocketPath();
        boolean create = false;
        int count = 10, type = 0;
        String channel = null, text = "hello from Java";
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--socket": socket = Path.of(args[++i]); break;
                case "--create": create = true; break;
                case "--count": count = Integer.parseInt(args[++i]); break;
                case "--type": type = Integer.parseInt(args[++i]); break;
                default:
                    if (channel == null) channel = args[i]; else text = args[i];
            }
        }
        if (channel == null) {
            System.err.println("usage: Produce [--socket PATH] [--create] [--count N] [--type T] CHANNEL [TEXT]");
            System.exit(2);
        }
        AttachOptions opts = create ? AttachOptions.create().capacity(1 << 16).mode(0666) : new AttachOptions();
        try (TaktClient client = TaktClient.connect(socket); Producer p = client.openProducer(channel, opts)) {
            for (int i = 1; i <= count; i++)
                p.send((text + " " + i).getBytes(StandardCharsets.UTF_8), type);
            long committed = p.flush(Duration.ofSeconds(10));
            System.out.println("produced " + committed + " records into " + channel + " (max_record "
                    + p.maxRecord() + ")");
        } catch (TaktException.NotRunning e) {
            System.err.println("Produce: " + e.getMessage());
            System.exit(1);
        } catch (TaktException e) {
            System.err.println("Produce: " + channel + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
