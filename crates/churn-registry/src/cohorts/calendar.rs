//! The calendar of cohorts: UTC days, ISO weeks and months, in milliseconds since the
//! epoch, without a date library.

pub const DAY_MILLIS: i64 = 86_400_000;

/// 2^60 ms, about 36 million years: the calendar's arithmetic stays far from overflow.
const FAR: i64 = 1 << 60;

/// Calendar periods of cohorts, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CohortPeriod {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl CohortPeriod {
    pub const ALL: [CohortPeriod; 3] = [CohortPeriod::Day, CohortPeriod::Week, CohortPeriod::Month];

    /// The first instant of the period holding `millis` (taken within ±36 million years,
    /// so that open-ended windows need no special case).
    pub fn start(self, millis: i64) -> i64 {
        let day = millis.clamp(-FAR, FAR).div_euclid(DAY_MILLIS);
        match self {
            CohortPeriod::Day => day * DAY_MILLIS,
            // 1970-01-01 was a Thursday, three days after a Monday.
            CohortPeriod::Week => (day - (day + 3).rem_euclid(7)) * DAY_MILLIS,
            CohortPeriod::Month => {
                let (year, month, _) = civil_from_days(day);
                days_from_civil(year, month, 1) * DAY_MILLIS
            }
        }
    }

    /// The first instant after the period that starts at `start`.
    pub fn end(self, start: i64) -> i64 {
        match self {
            CohortPeriod::Day => start + DAY_MILLIS,
            CohortPeriod::Week => start + 7 * DAY_MILLIS,
            CohortPeriod::Month => {
                let (year, month, _) = civil_from_days(start.div_euclid(DAY_MILLIS));
                let (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                days_from_civil(year, month, 1) * DAY_MILLIS
            }
        }
    }

    pub(super) fn code(self) -> i64 {
        match self {
            CohortPeriod::Day => 0,
            CohortPeriod::Week => 1,
            CohortPeriod::Month => 2,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_convert_both_ways() {
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn every_period_ends_where_the_next_starts() {
        for day in -3_000..3_000_i64 {
            for period in CohortPeriod::ALL {
                let start = period.start(day * DAY_MILLIS + 12_345);
                let end = period.end(start);
                assert!(start <= day * DAY_MILLIS && day * DAY_MILLIS < end);
                assert_eq!(period.start(end), end);
                assert_eq!(period.start(end - 1), start);
            }
        }
    }
}
