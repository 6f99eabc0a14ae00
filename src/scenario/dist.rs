//! Duration distributions ([`Dist`]) for hold and think times, key choice
//! ([`KeyPick`]), and the compact duration syntax they share.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, StandardNormal};

/// The distribution forms, for help messages.
pub const DIST_FORMS: &str = r#""5ms", "exp(5ms)", "uniform(1ms,10ms)", "normal(5ms,1ms)""#;
/// The key-pick forms, for help messages.
pub const KEY_PICK_FORMS: &str = r#""uniform", "zipf(1.1)", "round_robin""#;

/// Why a [`Dist`] or [`KeyPick`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseValueError {
    /// What is wrong (without the input itself, which the caller names).
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl ParseValueError {
    fn dist(message: impl Into<String>) -> Self {
        ParseValueError {
            message: message.into(),
            help: format!("valid forms: {DIST_FORMS}"),
        }
    }

    fn not_a_duration(text: &str) -> Self {
        ParseValueError {
            message: format!("`{text}` is not a duration"),
            help: format!("write a humantime duration such as \"5ms\"; valid forms: {DIST_FORMS}"),
        }
    }
}

/// Parse one humantime duration (`"250ms"`, `"2s"`, `"1m"`), surrounding
/// whitespace tolerated.
pub fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// Displays a duration in the shortest exact humantime form: `0ms`, `250us`,
/// `1500ms`, `2s`, `1m`, `2h`. Never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurFmt(pub Duration);

impl fmt::Display for DurFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0ms");
        }
        const S: u128 = 1_000_000_000;
        if ns % S == 0 {
            let s = ns / S;
            if s % 3600 == 0 {
                write!(f, "{}h", s / 3600)
            } else if s % 60 == 0 {
                write!(f, "{}m", s / 60)
            } else {
                write!(f, "{s}s")
            }
        } else if ns % 1_000_000 == 0 {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns % 1_000 == 0 {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

/// A distribution of durations (hold and think times).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Always the same: `"5ms"`.
    Const(Duration),
    /// Exponential with this mean: `"exp(5ms)"`.
    Exp {
        /// Mean.
        mean: Duration,
    },
    /// Uniform over `lo..=hi`: `"uniform(1ms,10ms)"`.
    Uniform {
        /// Lower bound.
        lo: Duration,
        /// Upper bound (`>= lo`).
        hi: Duration,
    },
    /// Normal, clamped at zero: `"normal(5ms,1ms)"`.
    Normal {
        /// Mean.
        mean: Duration,
        /// Standard deviation.
        sd: Duration,
    },
}

/// Seconds as a duration: negative and NaN give zero, too large saturates.
fn secs(x: f64) -> Duration {
    if x.is_nan() || x <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(x).unwrap_or(Duration::MAX)
    }
}

impl Dist {
    /// Sample; never negative (normal is clamped at 0). Does not allocate.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Dist::Const(d) => d,
            Dist::Exp { mean } => {
                if mean.is_zero() {
                    return Duration::ZERO;
                }
                let x: f64 = Exp1.sample(rng);
                secs(mean.as_secs_f64() * x)
            }
            Dist::Uniform { lo, hi } => {
                if hi <= lo {
                    return lo;
                }
                let width = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX);
                lo.saturating_add(Duration::from_nanos(rng.random_range(0..=width)))
            }
            Dist::Normal { mean, sd } => {
                if sd.is_zero() {
                    return mean;
                }
                let z: f64 = StandardNormal.sample(rng);
                secs(mean.as_secs_f64() + sd.as_secs_f64() * z)
            }
        }
    }

    /// The nominal mean (for `normal`, before clamping at zero).
    pub fn mean(&self) -> Duration {
        match *self {
            Dist::Const(d) => d,
            Dist::Exp { mean } | Dist::Normal { mean, .. } => mean,
            Dist::Uniform { lo, hi } => lo + (hi - lo) / 2,
        }
    }

    /// Whether every sample is zero (`Const(0)`).
    pub fn is_zero(&self) -> bool {
        matches!(self, Dist::Const(d) if d.is_zero())
    }
}

/// `name(args)` split into a trimmed name and its raw argument text.
fn call(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_suffix(')')?;
    let (name, args) = inner.split_once('(')?;
    Some((name.trim(), args))
}

fn dur_arg(text: &str) -> Result<Duration, ParseValueError> {
    let t = text.trim();
    parse_duration(t).map_err(|_| ParseValueError::not_a_duration(t))
}

/// Exactly `N` comma-separated arguments of `name`.
fn args<const N: usize>(name: &str, args: &str) -> Result<[Duration; N], ParseValueError> {
    let parts: Vec<&str> = args.split(',').collect();
    if parts.len() != N {
        let want = if N == 1 {
            "1 argument".to_string()
        } else {
            format!("{N} arguments")
        };
        return Err(ParseValueError::dist(format!(
            "`{name}` takes {want}, found {}",
            parts.len()
        )));
    }
    let mut out = [Duration::ZERO; N];
    for (slot, p) in out.iter_mut().zip(parts) {
        *slot = dur_arg(p)?;
    }
    Ok(out)
}

impl FromStr for Dist {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseValueError::dist("empty distribution"));
        }
        let Some((name, a)) = call(s) else {
            return dur_arg(s).map(Dist::Const);
        };
        match name.to_ascii_lowercase().as_str() {
            "exp" => {
                let [mean] = args::<1>("exp", a)?;
                Ok(Dist::Exp { mean })
            }
            "uniform" => {
                let [lo, hi] = args::<2>("uniform", a)?;
                if lo > hi {
                    return Err(ParseValueError::dist(format!(
                        "uniform bounds are reversed: {} > {}",
                        DurFmt(lo),
                        DurFmt(hi)
                    )));
                }
                Ok(Dist::Uniform { lo, hi })
            }
            "normal" => {
                let [mean, sd] = args::<2>("normal", a)?;
                Ok(Dist::Normal { mean, sd })
            }
            other => {
                let mut e = ParseValueError::dist(format!("unknown distribution `{other}`"));
                if let Some(s) = super::error::suggest(other, &["exp", "uniform", "normal"]) {
                    e.help = format!("did you mean `{s}`? {}", e.help);
                }
                Err(e)
            }
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Dist::Const(d) => write!(f, "{}", DurFmt(d)),
            Dist::Exp { mean } => write!(f, "exp({})", DurFmt(mean)),
            Dist::Uniform { lo, hi } => write!(f, "uniform({},{})", DurFmt(lo), DurFmt(hi)),
            Dist::Normal { mean, sd } => write!(f, "normal({},{})", DurFmt(mean), DurFmt(sd)),
        }
    }
}

/// How each lock cycle picks its key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyPick {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `s > 0`: key 0 hottest.
    Zipf(f64),
    /// Node `i` takes keys `i, i+1, ...` in turn.
    RoundRobin,
}

impl FromStr for KeyPick {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let help = || format!("valid forms: {KEY_PICK_FORMS}");
        match s {
            "uniform" => return Ok(KeyPick::Uniform),
            "round_robin" => return Ok(KeyPick::RoundRobin),
            _ => {}
        }
        if let Some(("zipf", a)) = call(s) {
            let a = a.trim();
            return match a.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(KeyPick::Zipf(x)),
                Ok(_) => Err(ParseValueError {
                    message: format!("zipf exponent must be a finite number > 0, found `{a}`"),
                    help: "write e.g. \"zipf(1.1)\"; larger is more skewed".into(),
                }),
                Err(_) => Err(ParseValueError {
                    message: format!("`{a}` is not a number"),
                    help: "write e.g. \"zipf(1.1)\"".into(),
                }),
            };
        }
        let name = call(s).map_or(s, |(n, _)| n);
        let mut help = help();
        if let Some(x) = super::error::suggest(name, &["uniform", "zipf", "round_robin"]) {
            help = format!("did you mean `{x}`? {help}");
        }
        Err(ParseValueError {
            message: format!("unknown key pick `{s}`"),
            help,
        })
    }
}

impl fmt::Display for KeyPick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPick::Uniform => f.write_str("uniform"),
            KeyPick::Zipf(s) => write!(f, "zipf({s})"),
            KeyPick::RoundRobin => f.write_str("round_robin"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_every_form_exactly() {
        assert_eq!("5ms".parse::<Dist>().unwrap(), Dist::Const(ms(5)));
        assert_eq!(
            " 0ms ".parse::<Dist>().unwrap(),
            Dist::Const(Duration::ZERO)
        );
        assert_eq!(
            "exp(5ms)".parse::<Dist>().unwrap(),
            Dist::Exp { mean: ms(5) }
        );
        assert_eq!(
            "uniform( 1ms , 10ms )".parse::<Dist>().unwrap(),
            Dist::Uniform {
                lo: ms(1),
                hi: ms(10)
            }
        );
        assert_eq!(
            "uniform(2ms,2ms)".parse::<Dist>().unwrap(),
            Dist::Uniform {
                lo: ms(2),
                hi: ms(2)
            }
        );
        assert_eq!(
            "normal(5ms, 1ms)".parse::<Dist>().unwrap(),
            Dist::Normal {
                mean: ms(5),
                sd: ms(1)
            }
        );
        assert_eq!(
            " exp ( 200us ) ".parse::<Dist>().unwrap(),
            Dist::Exp {
                mean: Duration::from_micros(200)
            }
        );
    }

    #[test]
    fn rejects_bad_forms_with_reasons() {
        let e = "exp(5)".parse::<Dist>().unwrap_err();
        assert_eq!(e.message, "`5` is not a duration");
        assert!(
            e.help
                .starts_with("write a humantime duration such as \"5ms\"")
        );
        assert_eq!(
            "uniform(10ms,1ms)".parse::<Dist>().unwrap_err().message,
            "uniform bounds are reversed: 10ms > 1ms"
        );
        assert_eq!(
            "exp(1ms,2ms)".parse::<Dist>().unwrap_err().message,
            "`exp` takes 1 argument, found 2"
        );
        assert_eq!(
            "normal(1ms)".parse::<Dist>().unwrap_err().message,
            "`normal` takes 2 arguments, found 1"
        );
        let e = "expo(1ms)".parse::<Dist>().unwrap_err();
        assert_eq!(e.message, "unknown distribution `expo`");
        assert!(e.help.starts_with("did you mean `exp`?"));
        assert!("".parse::<Dist>().is_err());
        assert!("-5ms".parse::<Dist>().is_err());
        assert!("five".parse::<Dist>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "5ms",
            "0ms",
            "exp(5ms)",
            "uniform(1ms,10ms)",
            "normal(5ms,1ms)",
            "exp(250us)",
            "uniform(0ms,1500ms)",
            "normal(2s,1m)",
            "7ns",
            "2h",
        ] {
            let d: Dist = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
            assert_eq!(d.to_string().parse::<Dist>().unwrap(), d);
        }
        assert_eq!("1s 500ms".parse::<Dist>().unwrap().to_string(), "1500ms");
        assert_eq!("60s".parse::<Dist>().unwrap().to_string(), "1m");
    }

    #[test]
    fn means_and_zero() {
        assert_eq!(
            "uniform(1ms,10ms)".parse::<Dist>().unwrap().mean(),
            Duration::from_micros(5500)
        );
        assert_eq!("exp(5ms)".parse::<Dist>().unwrap().mean(), ms(5));
        assert_eq!("normal(5ms,1ms)".parse::<Dist>().unwrap().mean(), ms(5));
        assert!(Dist::Const(Duration::ZERO).is_zero());
        assert!(
            !Dist::Exp {
                mean: Duration::ZERO
            }
            .is_zero()
        );
        assert!(!Dist::Const(ms(1)).is_zero());
    }

    fn mean_of(d: Dist, n: u32, rng: &mut SmallRng) -> (f64, Duration, Duration) {
        let mut sum = 0.0;
        let mut lo = Duration::MAX;
        let mut hi = Duration::ZERO;
        for _ in 0..n {
            let x = d.sample(rng);
            sum += x.as_secs_f64();
            lo = lo.min(x);
            hi = hi.max(x);
        }
        (sum / f64::from(n), lo, hi)
    }

    #[test]
    fn sampling_has_the_right_mean_and_bounds() {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 100_000;
        let (m, _, _) = mean_of("exp(5ms)".parse().unwrap(), n, &mut rng);
        assert!((m - 0.005).abs() / 0.005 < 0.03, "exp mean {m}");

        let (m, lo, hi) = mean_of("uniform(1ms,10ms)".parse().unwrap(), n, &mut rng);
        assert!((m - 0.0055).abs() / 0.0055 < 0.02, "uniform mean {m}");
        assert!(
            lo >= ms(1) && hi <= ms(10),
            "uniform out of bounds: {lo:?}..{hi:?}"
        );

        let (m, lo, _) = mean_of("normal(5ms,1ms)".parse().unwrap(), n, &mut rng);
        assert!((m - 0.005).abs() / 0.005 < 0.02, "normal mean {m}");
        assert!(lo < ms(3));

        // Mostly below zero: clamped, never negative (Duration can't be),
        // and a good share exactly zero.
        let d: Dist = "normal(1ms,5ms)".parse().unwrap();
        let zeros = (0..10_000).filter(|_| d.sample(&mut rng).is_zero()).count();
        assert!((3_000..5_500).contains(&zeros), "{zeros} zeros");

        assert_eq!(Dist::Const(ms(3)).sample(&mut rng), ms(3));
        assert_eq!(
            Dist::Exp {
                mean: Duration::ZERO
            }
            .sample(&mut rng),
            Duration::ZERO
        );
        let same = Dist::Uniform {
            lo: ms(2),
            hi: ms(2),
        };
        assert_eq!(same.sample(&mut rng), ms(2));
    }

    #[test]
    fn sampling_works_through_dyn_rng() {
        let mut rng = SmallRng::seed_from_u64(1);
        let r: &mut dyn rand::Rng = &mut rng;
        let x = Dist::Exp { mean: ms(1) }.sample(r);
        assert!(x < Duration::from_secs(1));
    }

    #[test]
    fn key_pick_parses_and_displays() {
        assert_eq!("uniform".parse::<KeyPick>().unwrap(), KeyPick::Uniform);
        assert_eq!(
            " round_robin ".parse::<KeyPick>().unwrap(),
            KeyPick::RoundRobin
        );
        assert_eq!("zipf(1.1)".parse::<KeyPick>().unwrap(), KeyPick::Zipf(1.1));
        assert_eq!("zipf( 2 )".parse::<KeyPick>().unwrap(), KeyPick::Zipf(2.0));
        for s in ["uniform", "round_robin", "zipf(1.1)", "zipf(0.5)"] {
            assert_eq!(s.parse::<KeyPick>().unwrap().to_string(), s);
        }
        assert_eq!(
            "zipf(0)".parse::<KeyPick>().unwrap_err().message,
            "zipf exponent must be a finite number > 0, found `0`"
        );
        assert_eq!(
            "zipf(x)".parse::<KeyPick>().unwrap_err().message,
            "`x` is not a number"
        );
        let e = "round-robin".parse::<KeyPick>().unwrap_err();
        assert_eq!(e.message, "unknown key pick `round-robin`");
        assert!(
            e.help.starts_with("did you mean `round_robin`?"),
            "{}",
            e.help
        );
        assert!("zipf(inf)".parse::<KeyPick>().is_err());
    }
}
