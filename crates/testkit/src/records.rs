//! A small, seeded world of records as JSON lines: a week of darknet activity, survey findings and
//! notification cases over hosts that recur across days and windows, in three ISPs (one prefix
//! shared by two). For tests that compare what is computed two ways over the same records.

/// The ISP handles the world uses (the last is a prefix two ISPs share).
pub const ISPS: [&str; 3] = ["hikari-net", "sakura-bb", "hikari-net,sakura-bb"];

/// `per_day` activity records a day for seven days (2026-11-01 to 07), with a finding for every
/// second, a service record for every fourth, a notification case for every third and a C&C report
/// for every fifth, as record lines without ids.
pub fn week(seed: u64, per_day: usize) -> Vec<String> {
    let mut state = seed;
    let mut next = |n: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut lines = Vec::new();
    for day in 1..=7u32 {
        for i in 0..per_day {
            let host = format!("127.{}.{}.{}", 16 + next(2), next(4), next(200));
            let isp = ISPS[next(3) as usize];
            let hour = next(24);
            let class = if next(4) != 0 { "infected" } else { "unknown" };
            let at = format!("2026-11-{day:02}T{hour:02}");
            let sensor = [r#","sensor":"darknet-a""#, r#","sensor":"darknet-b""#, ""][next(3) as usize];
            lines.push(format!(
                r#"{{"kind":"activity","window_start":"{at}:00:00Z","window_end":"{at}:59:59Z","src":"{host}","classification":"{class}","tags":["mirai"],"packets":41,"bytes":1648,"distinct_destinations":39,"top_ports":[],"first_seen":"{at}:01:00Z","last_seen":"{at}:58:00Z","isp":"{isp}"{sensor}}}"#
            ));
            if i % 4 == 1 {
                let (port, protocol) = [(23, "telnet"), (80, "http"), (22, "ssh")][next(3) as usize];
                let minute = next(60);
                lines.push(format!(
                    r#"{{"kind":"service","observed_at":"{at}:{minute:02}:07Z","ip":"{host}","port":{port},"protocol":"{protocol}","status":"success","banner":"login: ","auth":"password","round":"2026-11"{sensor}}}"#
                ));
            }
            if i % 5 == 2 {
                let server = next(20);
                // A report of the last hour runs into the next day (two-hour windows).
                let (end, last) = if hour == 23 && day < 7 {
                    let next_day = format!("2026-11-{:02}T00", day + 1);
                    (format!("{next_day}:59:59Z"), format!("{next_day}:30:00Z"))
                } else {
                    (format!("{at}:59:59Z"), format!("{at}:59:00Z"))
                };
                lines.push(format!(
                    r#"{{"kind":"cnc","window_start":"{at}:00:00Z","window_end":"{end}","ip":"127.200.0.{server}","port":6667,"protocol":"tcp","score":0.9,"rank":1,"methods":["graph"],"seed_clients":3,"total_clients":9,"flows":40,"first_seen":"{at}:00:05Z","last_seen":"{last}","sensor":"isp-{}"}}"#,
                    next(3)
                ));
            }
            if i % 2 == 0 {
                let kind = ["router", "camera", "dvr"][next(3) as usize];
                let year = 2010 + next(5);
                let device = match next(4) {
                    0 => String::new(),
                    1 => r#","device":{"vendor":"Example Networks"}"#.to_string(),
                    _ => format!(r#","device":{{"vendor":"Example Networks","type":"{kind}","release_year":{year}}}"#),
                };
                lines.push(format!(
                    r#"{{"kind":"finding","observed_at":"{at}:12:09Z","ip":"{host}","port":23,"protocol":"telnet","issue":"default_credential","credential_id":17{device},"round":"2026-11","sensor":"survey-1","isp":"{isp}"}}"#
                ));
            }
            if i % 3 == 0 {
                let reason =
                    ["default_credential", "infected", "exposed_management", "no_authentication"][next(4) as usize];
                let status = ["fixed", "sent", "not_fixed"][next(3) as usize];
                let port = next(60000) + 1;
                let case_isp = isp.split(',').next().unwrap_or(isp);
                lines.push(format!(
                    r#"{{"kind":"notification","isp":"{case_isp}","ip":"{host}","port":{port},"protocol":"telnet","reason":"{reason}","created_at":"{at}:30:00Z","last_notified":"{at}:30:00Z","times_notified":1,"last_period":"month:2026-11","status":"{status}","language":"ja","evidence":[],"guide":"generic"}}"#
                ));
            }
        }
    }
    lines
}
