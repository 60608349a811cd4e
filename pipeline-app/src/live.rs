//! `steno live`: a capture device (cpal) through a pipeline, until Ctrl-C or `--duration`; or
//! several labelled devices at once (`--source`), each with its own ring and capture source,
//! in one pipeline that writes one transcript.
//!
//! The device's callback only converts its samples to `f32` and pushes them into a lock-free
//! ring ([`steno_core::push_captured`]); downmixing, resampling to 16 kHz and everything else
//! happen on the pipeline side in [`CaptureSource`], scheduled by the chosen backend. Ctrl-C
//! and `--duration` stop the source, so the backend flushes the utterance in progress, the
//! output and report are written, and the exit status is 0.
//!
//! ALSA and the JACK client library print their own diagnostics straight to stderr while
//! devices are listed and opened (a missing card, no JACK server); at the default log level
//! stderr points at /dev/null for those calls ([`quietly`]), so the terminal shows only steno.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    Device, ErrorKind, FromSample, SampleFormat, SizedSample, StreamConfig, SupportedStreamConfig,
};
use steno_core::{
    CaptureControl, CaptureSource, MAX_CAPTURE_CHANNELS, Pipeline, RingWriter, push_captured, ring,
};

use crate::cli::{LiveArgs, TranscribeArgs};
use crate::model;
use crate::output::{Output, ReportFile};
use crate::transcribe::{
    Sizing, backend, check_backend_options, chunker_config, format, interim_step, live_line,
    model_transcriber, publish,
};

/// Seconds of device audio the capture ring holds: room for the model's warm-up and for a
/// slow moment of the pipeline before audio is dropped.
const RING_SECONDS: usize = 10;

pub(crate) fn run(args: &LiveArgs) -> anyhow::Result<()> {
    let hosts = quietly(Hosts::open)?;
    if args.list_devices {
        return list_devices(&hosts);
    }
    let options = transcribe_options(args);
    check_backend_options(&options)?;
    let chunker = chunker_config(&options.pipeline, true)?;
    if args.sources.len() > 1 && args.pipeline.interim {
        bail!("--interim is not supported with several --source devices yet");
    }
    let duration = match args.duration {
        Some(secs) if !(secs.is_finite() && secs > 0.0) => {
            bail!("--duration {secs}: must be a positive number of seconds")
        }
        secs => secs.map(Duration::from_secs_f64),
    };
    // (label, device name asked for): one unlabelled device, or the labelled --source ones.
    let wanted: Vec<(Option<&str>, Option<&str>)> = if args.sources.is_empty() {
        vec![(None, args.device.as_deref())]
    } else {
        args.sources
            .iter()
            .map(|(label, device)| (Some(label.as_str()), Some(device.as_str())))
            .collect()
    };
    let devices = quietly(|| {
        wanted
            .iter()
            .map(|(label, device)| {
                let device = hosts.pick_device(*device)?;
                let name = device_name(&device);
                let supported = pick_config(&device, &name)?;
                anyhow::Ok((label.map(str::to_owned), device, name, supported))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    // The model loads before the devices open, so the rings do not fill during loading.
    let model_path = model::resolve(args.pipeline.decoding.model.as_deref())?;
    let sizing = Sizing::of(&options);
    let backend = backend(&options, &sizing, &model_path)?;
    let transcriber = model_transcriber(&options, &sizing, &model_path)?;
    let format = format(args.pipeline.format);
    let limits = args.pipeline.line_limits();
    let (output, sink) = Output::create(args.output.as_deref(), format, limits, None)?;
    let sink = match live_line(&options, format, &output) {
        Some(line) => Box::new(line),
        None => sink,
    };
    let report_file = args.report.as_deref().map(ReportFile::create).transpose()?;

    let mut sources = Vec::new();
    let mut controls = Vec::new();
    let mut streams = Vec::new();
    let mut listening = Vec::new();
    for (label, device, name, supported) in devices {
        let config = supported.config();
        let channels = usize::from(config.channels);
        let (writer, reader) = ring(config.sample_rate as usize * channels * RING_SECONDS);
        let mut source = CaptureSource::new(name.clone(), reader, config.sample_rate, channels)?;
        if let Some(duration) = duration {
            source = source.with_duration_limit(duration);
        }
        let control = source.control();
        controls.push(control.clone());
        let stream = quietly(|| {
            let stream = open_stream(
                &device,
                &config,
                supported.sample_format(),
                writer,
                control,
                &name,
            )?;
            stream
                .play()
                .map_err(|e| anyhow!(explain(&e, &name, "cannot start capturing")))?;
            anyhow::Ok(stream)
        })?;
        streams.push(stream);
        listening.push(format!(
            "{}'{name}' ({} Hz, {channels} channel(s), {})",
            label.as_deref().map_or(String::new(), |l| format!("{l}: ")),
            config.sample_rate,
            supported.sample_format()
        ));
        sources.push((label, source));
    }
    stop_on_ctrl_c(controls)?;
    eprintln!(
        "steno: listening on {}; Ctrl-C to stop",
        listening.join(", ")
    );
    let mut sources = sources.into_iter();
    let (label, first) = sources.next().context("at least one device")?;
    let mut pipeline = Pipeline::builder(first, transcriber, sink)
        .chunker(chunker)
        // A microphone delivers audio in real time: start on each utterance early.
        .early_start(!args.pipeline.decoding.no_early_start)
        .interim_step(interim_step(&args.pipeline));
    if let Some(label) = label {
        pipeline = pipeline.label(label);
    }
    if let Some(near) = &args.echo_guard {
        pipeline = pipeline.echo_guard(near);
    }
    for (label, source) in sources {
        pipeline = pipeline.source(label.unwrap_or_default(), source);
    }
    let pipeline = pipeline.build()?;
    // The streams stay on this thread (they need not be `Send`); the backend runs on its own.
    let running = std::thread::Builder::new()
        .name("steno-live".into())
        .spawn(move || backend.run(pipeline))
        .context("cannot start the pipeline thread")?;
    let report = running
        .join()
        .map_err(|_| anyhow!("the pipeline thread panicked"))?;
    drop(streams);
    publish(output, &report?, report_file)
}

/// The `transcribe` options equivalent to these live options, to share its helpers.
fn transcribe_options(args: &LiveArgs) -> TranscribeArgs {
    TranscribeArgs {
        inputs: Vec::new(),
        sources: Vec::new(),
        echo_guard: None,
        pipeline: args.pipeline.clone(),
        output: args.output.clone(),
        // Capture is real time by nature (sizing decodes one utterance as fast as it can);
        // the live pipeline's own options never pace a source.
        realtime: true,
        report: args.report.clone(),
        no_pack: true,
        raw: false,
        rate: steno_core::SAMPLE_RATE,
        channels: 1,
        worker_program: None::<PathBuf>,
        simulate_cost_ms: None,
    }
}

/// Ctrl-C (and SIGTERM) stop every capture cleanly; a second Ctrl-C exits at once.
fn stop_on_ctrl_c(controls: Vec<CaptureControl>) -> anyhow::Result<()> {
    ctrlc::set_handler(move || {
        if controls.iter().any(CaptureControl::is_stopped) {
            // Destructors do not run on this exit: remove the temporary files here.
            crate::output::remove_pending_files();
            std::process::exit(130);
        }
        eprintln!("steno: stopping; transcribing the last utterance (Ctrl-C again to abort)");
        for control in &controls {
            control.stop();
        }
    })
    .context("cannot install the Ctrl-C handler")
}

/// The name `--device` takes: the host's id for the device (on ALSA the PCM name, such as
/// `default`, `pulse` or `hw:CARD=PCH,DEV=0`), else its description.
fn device_name(device: &Device) -> String {
    device
        .id()
        .map_or_else(|_| device.to_string(), |id| id.id().to_owned())
}

fn input_devices(host: &cpal::Host) -> anyhow::Result<Vec<Device>> {
    Ok(host
        .input_devices()
        .map_err(|e| {
            anyhow!(explain(
                &e,
                "audio system",
                "cannot list the capture devices"
            ))
        })?
        .collect())
}

/// The audio systems devices are looked up in: ALSA (its PCMs: `default`, `pulse`,
/// `hw:...`), and PulseAudio or PipeWire's pulse server when one runs, for its sources by
/// name, the monitors of its sinks among them (the system's audio, `<sink>.monitor`), which
/// ALSA cannot name one by one.
struct Hosts {
    alsa: cpal::Host,
    /// Connected the first time a device is not one of ALSA's (or devices are listed): a run
    /// on an ALSA device never waits for the pulse server's handshake.
    pulse: std::sync::OnceLock<Option<cpal::Host>>,
}

impl Hosts {
    fn open() -> anyhow::Result<Self> {
        let alsa = cpal::host_from_id(cpal::HostId::Alsa)
            .map_err(|e| anyhow!(explain(&e, "ALSA", "cannot open the audio system")))?;
        Ok(Hosts {
            alsa,
            pulse: std::sync::OnceLock::new(),
        })
    }

    /// The PulseAudio server's capture sources; none when no server runs.
    fn pulse_sources(&self) -> Vec<Device> {
        let pulse = self.pulse.get_or_init(|| {
            // `available_hosts` only looks for the server's socket.
            cpal::available_hosts()
                .contains(&cpal::HostId::PulseAudio)
                .then(|| cpal::host_from_id(cpal::HostId::PulseAudio))
                .and_then(|host| {
                    host.inspect_err(|e| tracing::debug!("PulseAudio server unusable: {e}"))
                        .ok()
                })
        });
        pulse
            .as_ref()
            .and_then(|host| input_devices(host).ok())
            .unwrap_or_default()
    }

    /// The device called `wanted` (ALSA first, then the PulseAudio sources), or the default
    /// input device.
    fn pick_device(&self, wanted: Option<&str>) -> anyhow::Result<Device> {
        let Some(wanted) = wanted else {
            return self
                .alsa
                .default_input_device()
                .ok_or_else(|| anyhow!(NO_DEVICE));
        };
        let mut devices = input_devices(&self.alsa)?;
        if !devices.iter().any(|device| device_name(device) == wanted) {
            devices.extend(self.pulse_sources());
        }
        let names: Vec<String> = devices.iter().map(device_name).collect();
        if let Some(index) = names.iter().position(|n| n == wanted) {
            return devices
                .into_iter()
                .nth(index)
                .context("device list changed");
        }
        if names.is_empty() {
            bail!("{NO_DEVICE}");
        }
        bail!(
            "device '{wanted}' not found; available: {} (see `steno live --list-devices`)",
            names.join(", ")
        )
    }
}

/// Runs `f` (calls into the audio libraries) with stderr on /dev/null, unless debug logs are
/// on: ALSA and JACK print there directly, bypassing steno's logs. steno's own messages
/// are returned as values from `f` and printed after stderr is back.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let _quiet = (!tracing::enabled!(tracing::Level::DEBUG))
        .then(StderrSilenced::start)
        .flatten();
    f()
}

/// While it lives, file descriptor 2 is /dev/null; dropping it puts the real stderr back.
struct StderrSilenced {
    saved: OwnedFd,
}

impl StderrSilenced {
    /// `None` (and stderr left alone) if stderr cannot be saved or /dev/null opened.
    fn start() -> Option<Self> {
        let saved = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
        let null = File::options().write(true).open("/dev/null").ok()?;
        rustix::stdio::dup2_stderr(&null).ok()?;
        Some(StderrSilenced { saved })
    }
}

impl Drop for StderrSilenced {
    fn drop(&mut self) {
        // Nothing to report it to if this fails: stderr is what failed to come back.
        let _ = rustix::stdio::dup2_stderr(&self.saved);
    }
}

fn list_devices(hosts: &Hosts) -> anyhow::Result<()> {
    // Every line is made with stderr silenced (probing a device is what makes ALSA talk),
    // then printed.
    let lines = quietly(|| {
        let default = hosts.alsa.default_input_device().map(|d| device_name(&d));
        let line = |device: &Device| {
            let name = device_name(device);
            let config = device.default_input_config().map_or_else(
                |e| format!("unusable: {e}"),
                |c| {
                    format!(
                        "{} Hz, {} channel(s), {}",
                        c.sample_rate(),
                        c.channels(),
                        c.sample_format()
                    )
                },
            );
            let mark = if default.as_deref() == Some(name.as_str()) {
                " (default)"
            } else if name.ends_with(".monitor") {
                " (monitor: the system's audio)"
            } else {
                ""
            };
            format!("{name}{mark}\t{device}\t{config}")
        };
        let lines: Vec<String> = input_devices(&hosts.alsa)?
            .iter()
            .chain(&hosts.pulse_sources())
            .map(line)
            .collect();
        anyhow::Ok(lines)
    })?;
    if lines.is_empty() {
        bail!("{}", NO_DEVICE);
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

const NO_DEVICE: &str = "no input device found: connect a microphone (or start PulseAudio/PipeWire) \
     and check `steno live --list-devices`";

/// Whether steno can capture this format (linear PCM of any width; not DSD).
fn is_pcm(format: SampleFormat) -> bool {
    use SampleFormat::{F32, F64, I8, I16, I24, I32, I64, U8, U16, U24, U32, U64};
    matches!(
        format,
        I8 | I16 | I24 | I32 | I64 | U8 | U16 | U24 | U32 | U64 | F32 | F64
    )
}

/// The device's default configuration when steno can use it, else the first supported one
/// (at 16 kHz if the device offers it, else a standard rate).
fn pick_config(device: &Device, name: &str) -> anyhow::Result<SupportedStreamConfig> {
    let usable = |c: &SupportedStreamConfig| {
        is_pcm(c.sample_format()) && (1..=MAX_CAPTURE_CHANNELS).contains(&usize::from(c.channels()))
    };
    if let Ok(config) = device.default_input_config()
        && usable(&config)
    {
        return Ok(config);
    }
    let ranges = device.supported_input_configs().map_err(|e| {
        anyhow!(explain(
            &e,
            name,
            "cannot read the supported configurations"
        ))
    })?;
    ranges
        .filter(|r| is_pcm(r.sample_format()))
        .filter(|r| (1..=MAX_CAPTURE_CHANNELS).contains(&usize::from(r.channels())))
        .map(|r| {
            r.try_with_sample_rate(steno_core::SAMPLE_RATE)
                .unwrap_or_else(|| r.with_standard_sample_rate())
        })
        .next()
        .ok_or_else(|| {
            anyhow!(
                "device '{name}' offers no configuration steno can capture (linear PCM, 1 to \
                 {MAX_CAPTURE_CHANNELS} channels): pick another device with --device (see \
                 `steno live --list-devices`)"
            )
        })
}

fn open_stream(
    device: &Device,
    config: &StreamConfig,
    sample_format: SampleFormat,
    writer: RingWriter,
    control: CaptureControl,
    name: &str,
) -> anyhow::Result<cpal::Stream> {
    use SampleFormat::{F32, F64, I8, I16, I24, I32, I64, U8, U16, U24, U32, U64};
    let open = match sample_format {
        I8 => build::<i8>,
        I16 => build::<i16>,
        I24 => build::<cpal::I24>,
        I32 => build::<i32>,
        I64 => build::<i64>,
        U8 => build::<u8>,
        U16 => build::<u16>,
        U24 => build::<cpal::U24>,
        U32 => build::<u32>,
        U64 => build::<u64>,
        F32 => build::<f32>,
        F64 => build::<f64>,
        other => bail!(
            "device '{name}': sample format {other} is not supported; pick another device with \
             --device (see `steno live --list-devices`)"
        ),
    };
    open(device, config, writer, control, name)
        .map_err(|e| anyhow!(explain(&e, name, "cannot open the device")))
}

/// Opens an input stream whose callback is [`push_captured`] and nothing else.
fn build<T>(
    device: &Device,
    config: &StreamConfig,
    mut writer: RingWriter,
    control: CaptureControl,
    name: &str,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels);
    let name = name.to_owned();
    device.build_input_stream(
        *config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            push_captured(data, channels, &mut writer);
        },
        move |error: cpal::Error| on_stream_error(&error, &control, &name),
        None,
    )
}

/// The stream's error callback (not the audio callback: it may lock and log). A lost device
/// ends the run with an error after the audio captured before it; glitches are warnings.
fn on_stream_error(error: &cpal::Error, control: &CaptureControl, name: &str) {
    match error.kind() {
        ErrorKind::Xrun | ErrorKind::RealtimeDenied | ErrorKind::DeviceChanged => {
            tracing::warn!("capture device '{name}': {error}");
        }
        _ => control.fail(format!(
            "device lost mid-stream ({error}): reconnect it (or pick another with --device) and \
             start `steno live` again"
        )),
    }
}

/// A cpal error as one line that says what to do.
fn explain(error: &cpal::Error, name: &str, doing: &str) -> String {
    let advice = match error.kind() {
        ErrorKind::DeviceBusy => "the device is busy: close the other programs using it, or pick \
             another device with --device"
            .to_owned(),
        ErrorKind::DeviceNotAvailable => "the device is not available (disconnected?): \
             reconnect it, or pick another with --device (see `steno live --list-devices`)"
            .to_owned(),
        ErrorKind::UnsupportedConfig | ErrorKind::UnsupportedOperation => format!(
            "unsupported configuration ({error}): pick another device with --device (see \
             `steno live --list-devices`)"
        ),
        ErrorKind::PermissionDenied => "permission denied: add your user to the `audio` group \
             or allow microphone access"
            .to_owned(),
        ErrorKind::HostUnavailable => "the audio system is not available: start PulseAudio or \
             PipeWire, or check ALSA"
            .to_owned(),
        _ => error.to_string(),
    };
    format!("device '{name}': {doing}: {advice}")
}
