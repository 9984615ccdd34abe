"""Command-line commands: thin click wrappers over plain functions."""

import click

from models.accounts import Role
from models.accounts import Staff
from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from models.units import HealthUnit
from models.validation import FieldError


def init_db():
    """Create or migrate the schema; return the migrations applied."""
    from migrations import migrate

    with db.connection_context():
        return migrate()


def create_user(username, role, unit_code, full_name=None, email=None):
    """Create an account and return (account, one-time password)."""
    username = (username or "").strip().lower()
    if not username or not username.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise FieldError("username", "letters, digits, '.', '_' or '-' only")
    if role not in Role.ALL:
        raise FieldError("role", f"one of {', '.join(Role.ALL)}")
    with db.atomic():
        unit = HealthUnit.get_or_none(HealthUnit.code == unit_code)
        if unit is None:
            raise FieldError("unit", f"no health unit has the code {unit_code!r}")
        if Staff.select().where(Staff.username == username).exists():
            raise FieldError("username", f"{username!r} is taken")
        account = Staff(username=username, full_name=full_name or username, role=role, unit=unit, email=email)
        password = account.issue_one_time_password()
        account.save(force_insert=True)
        AuditEvent.record(Action.CREATE, object_type="staff", object_id=account.id, source="cli", role=role)
    return account, password


def export_report(name, fmt, output, filter_values=None):
    """Write the named report (built-in or saved) for every commune to output; return the rows written."""
    from models.accounts import Scope
    from reports import get_report
    from reports.base import Filters
    from services import report_files

    report = get_report(name)
    if report is None:
        raise FieldError("name", f"no report is named {name!r}")
    filters = Filters.from_mapping(filter_values or {}, allowed=report.filters)
    scope = Scope.everything()
    frame = report.run(scope, filters)
    report_files.write_report(report, frame, scope, filters, fmt, output)
    report_files.audit_export(None, name, filters, len(frame), fmt, source="cli")
    return len(frame)


def import_citizens(path, dry_run=False, echo=None):
    """Import citizens from an .xlsx or .csv file with full scope; return the ImportResult."""
    from models.accounts import Scope
    from services.citizen_import import import_citizens as run_import

    def progress(done, force):
        if echo is not None:
            echo(f"{done} rows checked")

    return run_import(path, Scope.everything(), dry_run=dry_run, source="cli", progress=progress)


def find_duplicates(echo=None):
    """Queue every likely pair of duplicate persons in the whole table; return how many were queued."""
    from services.duplicates import scan

    with db.atomic():
        return scan(echo=echo)


def register_commands(app):
    @app.cli.command("init-db")
    def init_db_command():
        """Create or migrate the database schema (safe to run twice)."""
        applied = init_db()
        click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", required=True, type=click.Choice(Role.ALL))
    @click.option("--unit", "unit_code", required=True, help="health unit code")
    @click.option("--full-name", default=None)
    @click.option("--email", default=None)
    def create_user_command(username, role, unit_code, full_name, email):
        """Create a staff account and print its one-time password."""
        try:
            with db.connection_context():
                account, password = create_user(username, role, unit_code, full_name, email)
        except FieldError as exc:
            raise click.UsageError(f"{exc.field}: {exc.message}") from exc
        click.echo(f"created {account.username} ({account.role}, {account.unit.code})")
        click.echo(f"one-time password: {password}")
        click.echo("It must be changed at the first sign-in.")

    @app.cli.command("demo-data")
    @click.option("--citizens", default=2000, show_default=True, type=click.IntRange(0, 10_000_000))
    @click.option("--province", default=22, show_default=True, type=int)
    @click.option("--seed", default=1, show_default=True, type=int)
    @click.option("--if-empty", is_flag=True, help="only when the database has no health units yet")
    @click.option(
        "--declarations",
        default=None,
        type=click.IntRange(0, 10_000_000),
        help="risk declarations to make for the citizens  [default: one per 10 citizens]",
    )
    def demo_data_command(citizens, province, seed, if_empty, declarations):
        """Load deterministic demo data for one province."""
        from services import demo_risk
        from services.demo_data import DemoDataError
        from services.demo_data import generate

        with db.connection_context():
            if if_empty and HealthUnit.select().exists():
                click.echo("demo data: the database already has units, nothing loaded")
                return
            try:
                result = generate(citizens=citizens, province_code=province, seed=seed, echo=click.echo)
            except DemoDataError as exc:
                raise click.ClickException(str(exc)) from exc
            wanted = citizens // 10 if declarations is None else declarations
            made = demo_risk.generate(wanted, seed=seed) if wanted else 0
            click.echo(f"demo data: {made:,} risk declarations, each in a case for the CDC and the communes to triage")
        for line in result.summary_lines():
            click.echo(line)

    @app.cli.command("export-report")
    @click.argument("name")
    @click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx"]))
    @click.option("--output", required=True, type=click.Path(dir_okay=False, writable=True))
    @click.option("--from", "date_from", default=None, help="first day, dd/mm/yyyy")
    @click.option("--to", "date_to", default=None, help="last day, dd/mm/yyyy")
    @click.option("--commune", "ward", default=None, help="commune/ward code")
    @click.option("--unit", default=None, help="health unit code: its jurisdiction")
    @click.option("--vaccine", default=None, help="vaccine code")
    @click.option("--disease", default=None)
    def export_report_command(name, fmt, output, date_from, date_to, ward, unit, vaccine, disease):
        """Write a named report (coverage, completeness, activity, ... or a saved one) as CSV or XLSX."""
        from models.records import Vaccine

        try:
            with db.connection_context():
                values = {"date_from": date_from, "date_to": date_to, "ward": ward, "disease": disease}
                if unit:
                    found = HealthUnit.get_or_none(HealthUnit.code == unit)
                    if found is None:
                        raise FieldError("unit", f"no health unit has the code {unit!r}")
                    values["unit"] = str(found.id)
                if vaccine:
                    found = Vaccine.get_or_none(Vaccine.code == vaccine)
                    if found is None:
                        raise FieldError("vaccine", f"no vaccine has the code {vaccine!r}")
                    values["vaccine"] = str(found.id)
                rows = export_report(name, fmt, output, values)
        except FieldError as exc:
            raise click.UsageError(f"{exc.field}: {exc.message}") from exc
        click.echo(f"{name}: {rows} rows written to {output}")

    @app.cli.command("import-citizens")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="check and count, write nothing (but the rejected rows)")
    def import_citizens_command(file, dry_run):
        """Import citizens from an .xlsx or .csv file in the citizen template."""
        from services.citizen_import import ImportFileError

        try:
            with db.connection_context():
                result = import_citizens(file, dry_run=dry_run, echo=lambda line: click.echo(line, err=True))
        except ImportFileError as exc:
            raise click.ClickException(f"{file}: {exc.message}") from exc
        for item in result.rejected[:20]:
            click.echo(f"row {item.row}, {item.column}: {item.reason}")
        if len(result.rejected) > 20:
            click.echo(f"… and {len(result.rejected) - 20} more rejected rows")
        if result.rejected_path:
            click.echo(f"rejected rows with reasons: {result.rejected_path}")
        if dry_run:
            click.echo("dry run: nothing was written")
        click.echo(result.counts_line())

    @app.cli.command("find-duplicates")
    def find_duplicates_command():
        """Queue likely duplicate persons (same ID number; same name, birth date and phone or commune)."""
        with db.connection_context():
            queued = find_duplicates(echo=lambda line: click.echo(line, err=True))
        click.echo(f"queued={queued}")

    return app
