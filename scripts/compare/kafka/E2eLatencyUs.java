/*
 * The loop of org.apache.kafka.tools.EndToEndLatency (Kafka 4.x) timed in microseconds.
 *
 * Kafka's own tool keeps each latency as whole milliseconds (elapsed / 1000 / 1000, truncated),
 * so on loopback its percentiles read 0 or 1 ms and cannot give a ratio. This program repeats
 * the tool's loop exactly -- same producer settings (linger.ms=0, the given acks), same consumer
 * settings (fetch.max.wait.ms=0, assign every partition, seek to the end), one record in flight:
 * send, wait for the ack, poll until that record is read -- and keeps nanoseconds.
 * scripts/compare/kafka.sh runs it beside EndToEndLatency and labels its figures as its own.
 *
 * Run with the Java source launcher: java -cp 'kafka-libs/*' E2eLatencyUs.java
 *   BROKERS TOPIC NUM_MESSAGES ACKS MESSAGE_SIZE_BYTES
 * Prints one JSON object on its last line.
 */

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import java.util.stream.Collectors;

public class E2eLatencyUs {
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: E2eLatencyUs BROKERS TOPIC NUM_MESSAGES ACKS MESSAGE_SIZE_BYTES");
            System.exit(2);
        }
        String brokers = args[0];
        String topic = args[1];
        int n = Integer.parseInt(args[2]);
        String acks = args[3];
        int size = Integer.parseInt(args[4]);

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "e2e-us-" + System.currentTimeMillis());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "0");

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.MAX_VALUE);
        pp.put(ProducerConfig.ACKS_CONFIG, acks);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.ByteArraySerializer");
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.ByteArraySerializer");

        long[] lat = new long[n];
        double total = 0;
        long wallStart = System.nanoTime();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            List<TopicPartition> tps = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition()))
                    .collect(Collectors.toList());
            consumer.assign(tps);
            consumer.seekToEnd(tps);
            consumer.assignment().forEach(consumer::position);
            Random random = new Random(0);
            wallStart = System.nanoTime();
            for (int i = 0; i < n; i++) {
                byte[] message = new byte[size];
                Arrays.fill(message, (byte) (random.nextInt(26) + 65));
                long begin = System.nanoTime();
                producer.send(new ProducerRecord<>(topic, message)).get();
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(60000));
                long elapsed = System.nanoTime() - begin;
                if (records.count() != 1) {
                    throw new IllegalStateException("expected exactly one record, polled " + records.count());
                }
                if (!Arrays.equals(records.iterator().next().value(), message)) {
                    throw new IllegalStateException("the record read is not the record sent");
                }
                total += elapsed;
                lat[i] = elapsed;
            }
        }
        double wall = (System.nanoTime() - wallStart) / 1e9;
        Arrays.sort(lat);
        // Same index rule as EndToEndLatency: latencies[(int) (length * q)].
        System.out.printf(java.util.Locale.ROOT,
                "{\"tool\":\"E2eLatencyUs\",\"records\":%d,\"elapsed_s\":%.3f,\"records_per_s\":%.1f,"
                        + "\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}%n",
                n, wall, n / wall, total / n / 1000.0,
                lat[(int) (n * 0.5)] / 1000.0, lat[(int) (n * 0.9)] / 1000.0, lat[(int) (n * 0.99)] / 1000.0,
                lat[Math.min(n - 1, (int) (n * 0.999))] / 1000.0, lat[n - 1] / 1000.0);
    }
}
