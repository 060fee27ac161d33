//! Times as people write them: RFC 3339 read into microseconds of the store clock, and
//! written back (the spelling `at/<T>` and `--at T` take, and error messages show).

/// Writes `micros` (µs since the epoch) as RFC 3339 in UTC with microseconds:
/// `2026-12-06T01:30:00.250000Z`.
pub fn show_micros(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

/// Returns the proleptic Gregorian (year, month, day) of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Returns the days since 1970-01-01 of proleptic Gregorian `y-m-d` (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Returns the days of month `m` of year `y`.
fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads `digits` ASCII digits of `s` at `at` as a number.
fn number(s: &[u8], at: usize, digits: usize) -> Option<u32> {
    let part = s.get(at..at + digits)?;
    part.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// Reads an RFC 3339 time (`2026-12-06T01:30:00Z`, `2026-12-06T02:30:00.250+01:00`; `t`
/// or a space for `T`, `z` for `Z`) as microseconds since the epoch; digits past the
/// microsecond are cut. `None` for anything else, or a date or time that does not exist.
pub fn parse_time(text: &str) -> Option<i64> {
    let s = text.as_bytes();
    let (y, mo, d) = (number(s, 0, 4)?, number(s, 5, 2)?, number(s, 8, 2)?);
    let (h, mi, sec) = (number(s, 11, 2)?, number(s, 14, 2)?, number(s, 17, 2)?);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| s[i] != c) || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let y = i64::from(y);
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let mut at = 19;
    let mut micros = 0i64;
    if s.get(at) == Some(&b'.') {
        let digits = s[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        for (i, b) in s[at + 1..at + 1 + digits.min(6)].iter().enumerate() {
            micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
        }
        at += 1 + digits;
    }
    let offset_secs = match s.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if s.len() == at + 6 && s[at + 3] == b':' => {
            let (oh, om) = (number(s, at + 1, 2)?, number(s, at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_secs;
    Some(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_as_rfc3339() {
        assert_eq!(show_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            show_micros(1_796_520_600_250_000),
            "2026-12-06T01:30:00.250000Z"
        );
        assert_eq!(
            show_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(show_micros(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rfc3339_times_are_read() {
        assert_eq!(
            parse_time("2026-12-06T01:30:00.25Z"),
            Some(1_796_520_600_250_000)
        );
        assert_eq!(
            parse_time("2026-12-06T02:30:00.250+01:00"),
            Some(1_796_520_600_250_000)
        );
        assert_eq!(
            parse_time("2026-12-05t20:30:00.2500009-05:00"),
            Some(1_796_520_600_250_000)
        );
        assert_eq!(parse_time("1970-01-01 00:00:00z"), Some(0));
        assert_eq!(
            parse_time("2000-02-29T00:00:00.000001Z"),
            Some(951_782_400_000_001)
        );
        for t in [0, 1_796_520_600_250_000, 951_782_400_000_001, -1] {
            assert_eq!(parse_time(&show_micros(t)), Some(t), "{}", show_micros(t));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "now",
            "2026-12-06",
            "2026-12-06T01:30:00",
            "2026-13-06T01:30:00Z",
            "2026-02-29T01:30:00Z",
            "2026-12-06T24:00:00Z",
            "2026-12-06T01:30:00.Z",
            "2026-12-06T01:30:00+0100",
            "2026-12-06T01:30:00+01:00x",
            "2026-12-06T01:3a:00Z",
            "2026-12-06T01:30:00+24:00",
            "2026-12-06X01:30:00Z",
            "２026-12-06T01:30:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }
}
