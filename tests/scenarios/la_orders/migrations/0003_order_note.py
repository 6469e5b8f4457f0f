from django.db import migrations, models

from la_orders.operations import CommentOnTable


class Migration(migrations.Migration):
    dependencies = [("la_orders", "0002_customer_vip")]
    operations = [
        CommentOnTable("order", "orders placed"),
        migrations.AddField("order", "note", models.CharField(default="", max_length=40)),
    ]
