//! The work queue on the broker: the JetStream stream that holds chunks, and the durable
//! consumer the workers of one model share. Coordinators and workers both create what is
//! missing, so either may start first.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use steno_core::{Error, Result};

use crate::wire;

/// How long a chunk may wait in the stream before the broker drops it: far beyond any run's
/// patience, so only the chunks of a coordinator that was killed expire this way.
const MAX_CHUNK_AGE: Duration = Duration::from_secs(3600);

/// The stream `name`, created as a work queue of chunks when missing.
///
/// # Errors
/// [`Error::Stage`] when the broker cannot be asked or has no JetStream;
/// [`Error::Config`] when a stream of that name exists but is not a steno work queue.
pub(crate) async fn stream(js: &jetstream::Context, name: &str) -> Result<stream::Stream> {
    let subjects = wire::stream_subjects(name);
    let config = stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects.clone()],
        retention: stream::RetentionPolicy::WorkQueue,
        // On disk, so chunks and the workers' progress survive a broker restart.
        storage: stream::StorageType::File,
        max_age: MAX_CHUNK_AGE,
        ..Default::default()
    };
    let mut stream = match js.get_or_create_stream(config).await {
        Ok(stream) => stream,
        // Another client created it at the same moment: the broker may refuse the later
        // request (its subjects overlap with the stream just made). Then it exists.
        Err(error) => js
            .get_stream(name)
            .await
            .map_err(|_| broker(format!("cannot open the JetStream stream {name}: {error}")))?,
    };
    let info = stream
        .info()
        .await
        .map_err(|error| broker(format!("cannot read the JetStream stream {name}: {error}")))?;
    if info.config.retention != stream::RetentionPolicy::WorkQueue
        || !info.config.subjects.contains(&subjects)
    {
        return Err(Error::Config(format!(
            "the NATS stream {name} exists but is not a steno work queue (retention {:?}, \
             subjects {:?}): name another stream",
            info.config.retention, info.config.subjects
        )));
    }
    Ok(stream)
}

/// How the workers of a model take chunks: each chunk goes to one of them, must be
/// acknowledged within `ack_wait` (workers extend it while they transcribe) and is delivered
/// at most `max_deliver` times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub(crate) ack_wait: Duration,
    pub(crate) max_deliver: i64,
}

/// The durable consumer the workers of `model` share, created with `delivery` when missing.
/// An existing consumer keeps the settings it was created with: they are returned.
pub(crate) async fn consumer(
    stream: &stream::Stream,
    stream_name: &str,
    model: &str,
    delivery: Delivery,
) -> Result<(consumer::PullConsumer, Delivery)> {
    let name = wire::consumer_name(model);
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: wire::model_filter(stream_name, model),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: delivery.ack_wait,
        max_deliver: delivery.max_deliver,
        description: Some(format!("steno workers of {model}")),
        ..Default::default()
    };
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|error| {
        broker(format!(
            "cannot open the consumer {name} of stream {stream_name}: {error}"
        ))
    })?;
    let info = consumer.info().await.map_err(|error| {
        broker(format!(
            "cannot read the consumer {name} of stream {stream_name}: {error}"
        ))
    })?;
    let actual = Delivery {
        ack_wait: info.config.ack_wait,
        max_deliver: info.config.max_deliver,
    };
    Ok((consumer, actual))
}

/// An error talking to the broker.
pub(crate) fn broker(problem: String) -> Error {
    Error::Stage {
        stage: "nats",
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalServer;

    /// A coordinator and its workers each create the stream (and workers their consumer) when
    /// it is missing, often at the same moment and on a broker that has just started: every
    /// one of them must get it, whichever request the broker took first.
    #[test]
    fn clients_creating_the_stream_at_once_all_get_it() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        for round in 0..10 {
            let server =
                LocalServer::start().expect("nats-server (`cargo xtask deps` installs it)");
            runtime.block_on(async {
                let connecting = (0..4).map(|_| async_nats::connect(server.url()));
                let clients: Vec<_> = futures_util::future::join_all(connecting)
                    .await
                    .into_iter()
                    .map(|client| jetstream::new(client.expect("connects")))
                    .collect();
                let creating = clients.iter().map(|js| stream(js, "RACE"));
                let mut streams = Vec::new();
                for created in futures_util::future::join_all(creating).await {
                    match created {
                        Ok(stream) => streams.push(stream),
                        Err(error) => panic!("round {round}: {error}"),
                    }
                }
                // The workers of one model share a consumer, and create it the same way.
                let delivery = Delivery {
                    ack_wait: Duration::from_secs(5),
                    max_deliver: 3,
                };
                let creating = streams
                    .iter()
                    .map(|stream| consumer(stream, "RACE", "model", delivery));
                for created in futures_util::future::join_all(creating).await {
                    if let Err(error) = created {
                        panic!("round {round}: {error}");
                    }
                }
            });
        }
    }
}
