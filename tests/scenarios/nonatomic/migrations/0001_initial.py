from django.db import migrations, models

# Validating a constraint that calls this checks every row at 10 ms a row: long enough
# for another session to look at the locks while VALIDATE CONSTRAINT runs.
SLOW_CHECK = """
CREATE FUNCTION nonatomic_slow_nonnegative(value integer) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM pg_sleep(0.01);
    RETURN value >= 0;
END
$$
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("qty", models.IntegerField()),
            ],
        ),
        migrations.RunSQL(SLOW_CHECK, "DROP FUNCTION nonatomic_slow_nonnegative(integer)"),
    ]
