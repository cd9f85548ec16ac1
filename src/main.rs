use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use rookery::app::startup::Application;
use rookery::app::{db, telemetry};
use rookery::cli::{Cli, Command, RoleArg, UserCommand};
use rookery::config::Settings;
use rookery::domain::accounts::users::{self, NewAccount};
use rookery::domain::accounts::{PasswordHasher, Role};
use rookery::domain::events::EventSink;
use rookery::domain::media::MediaService;
use rookery::seed::bench;
use rookery::seed::demo;
use rookery::seed::microblog::{self, MicroblogSeedError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_args(cli.settings) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log.filter, settings.log.format);
    let runtime = actix_web::rt::System::new();
    match runtime.block_on(run(
        cli.command.unwrap_or(Command::Serve { no_migrate: false }),
        settings,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the chain of causes says what to fix.
            eprintln!("error: {e:#}");
            // A refusal to run, like a bad argument, is a usage error.
            match e.downcast_ref::<MicroblogSeedError>() {
                Some(refused) if refused.is_refusal() => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { no_migrate } => {
            if settings.auth.jwt.generated {
                tracing::warn!(
                    "JWT_SECRET is not set: a random secret was generated, so every access token \
                     becomes invalid when this process restarts. Set JWT_SECRET (32+ bytes) in production."
                );
            }
            if !no_migrate {
                migrate(&settings).await?;
            }
            let app = Application::build(settings.clone()).await?;
            tracing::info!(bind = %settings.http.bind, port = app.port(), "rookery listening");
            app.run_until_signalled().await?;
            tracing::info!("rookery stopped");
            Ok(())
        }
        Command::Migrate => migrate(&settings).await,
        Command::SeedDemo => {
            migrate(&settings).await?;
            let pool = db::pool(&settings.database)?;
            let hasher = PasswordHasher::new(1)?;
            let media = MediaService::new(&settings.media, 1).context("media storage")?;
            // No engine here: the outbox keeps the events, and a running
            // server's engine (feeds, moderation) picks them up.
            let events = EventSink::new(None);
            let report = demo::seed(&pool, &hasher, &media, &events).await?;
            for line in report {
                println!("{line}");
            }
            println!(
                "demo ready: open the web client with api-key {}. These keys are public: \
                 never seed demo data on a production database.",
                demo::USERS.join(" or ")
            );
            Ok(())
        }
        Command::SeedBench(args) => {
            migrate(&settings).await?;
            let pool = db::pool(&settings.database)?;
            let hasher = PasswordHasher::new(1)?;
            let options = bench::BenchOptions {
                users: args.users,
                posts: args.posts,
                follows_per_user: args.follows_per_user,
                celebrity_followers: args.celebrity_followers,
                timeline_depth: args.timeline_depth,
                password: args.password,
                fanout_limit: settings.realtime.fanout_limit,
                seed: args.seed,
                keys_file: args.keys_file,
            };
            for line in bench::seed(&pool, &hasher, &options).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::SeedMicroblog(args) => {
            migrate(&settings).await?;
            let pool = db::pool(&settings.database)?;
            let options = microblog::MicroblogOptions {
                followees: args.followees,
                tweets: args.tweets,
                images: args.images,
                likes: args.likes,
                likers: args.likers,
                liker_keys: args.liker_keys,
                feed_cap: settings.http.compat_feed_cap,
                seed: args.seed,
                keys_file: args.keys_file,
            };
            for line in microblog::seed(&pool, &options).await?.report {
                println!("{line}");
            }
            Ok(())
        }
        Command::User(UserCommand::Create {
            username,
            email,
            role,
            password_stdin,
        }) => {
            migrate(&settings).await?;
            let password = read_password(password_stdin)?;
            let pool = db::pool(&settings.database)?;
            let hasher = PasswordHasher::new(1)?;
            let account = users::register(
                &pool,
                &hasher,
                NewAccount {
                    username: &username,
                    email: &email,
                    password: &password,
                    display_name: None,
                    role: match role {
                        RoleArg::User => Role::User,
                        RoleArg::Moderator => Role::Moderator,
                        RoleArg::Admin => Role::Admin,
                    },
                },
            )
            .await
            .map_err(|e| match e {
                rookery::domain::accounts::AccountError::Invalid(fields) => {
                    let parts: Vec<String> = fields
                        .iter()
                        .map(|(f, m)| format!("{f} {}", m.join("; ")))
                        .collect();
                    anyhow::anyhow!("{}", parts.join(", "))
                }
                other => anyhow::anyhow!(other),
            })?;
            println!(
                "created {} (id {}, role {})",
                account.username,
                account.id,
                account.role.as_str()
            );
            Ok(())
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::pool(&settings.database)?;
    db::migrate(&pool)
        .await
        .context("applying database migrations")?;
    tracing::info!("database migrations applied");
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let second = rpassword::prompt_password("Repeat password: ").context("reading the password")?;
    anyhow::ensure!(first == second, "the passwords do not match");
    Ok(first)
}
