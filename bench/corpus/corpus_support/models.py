from django.db import models


class Ticket(models.Model):
    subject = models.CharField(max_length=120)
    body = models.TextField(null=True, blank=True)  # noqa: DJ001 - nullable: added online
    status = models.CharField(max_length=20, default="open")
    priority = models.IntegerField(default=3)
    customer_email = models.EmailField(db_index=True)
    resolution_hours = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    assignee_email = models.EmailField(null=True, blank=True)  # noqa: DJ001 - nullable: added online
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True)
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        indexes = [models.Index(fields=["status", "priority"], name="ticket_status_priority_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closed_at__isnull=True)
                | models.Q(closed_at__gte=models.F("created_at")),
                name="ticket_closed_after_created",
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class TicketComment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author_email = models.EmailField()
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    is_internal = models.BooleanField(default=False, db_default=False)

    def __str__(self) -> str:
        return f"comment on {self.ticket_id}"
